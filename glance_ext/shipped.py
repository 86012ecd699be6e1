# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Where the files that ship with glance_ext are: catalog and samples.

The installed wheel is the product: every default that means "the shipped
metadefs catalog" or "the sample configs" resolves here, and finds the
copies the wheel carries inside the package (``glance_ext/data/``, put
there by ``setup.py``'s build step). A development checkout (editable
install) has no such copies; there the repository's own ``metadefs/`` and
``etc/``, the source of truth, are used.
"""

import importlib.resources
import os
from typing import List
from glance_ext.exceptions import ShippedDataMissing

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_CHECKOUT = os.path.dirname(_PACKAGE_DIR)


def _packaged(name: str) -> str:
    return str(importlib.resources.files("glance_ext") / "data" / name)


def _checkout(name: str) -> str:
    # setup.cfg marks a checkout: site-packages/<name> is someone else's.
    if os.path.isfile(os.path.join(_CHECKOUT, "setup.cfg")):
        return os.path.join(_CHECKOUT, name)
    return ""


def _find(name: str, what: str) -> str:
    for candidate in (_packaged(name), _checkout(name)):
        if candidate and os.path.isdir(candidate):
            return candidate
    raise ShippedDataMissing(
        "the %s of glance_ext is not installed (looked in %s): install "
        "glance_ext from a wheel or sdist built with `python -m build`, or "
        "from a complete checkout" % (what, _packaged(name)))


def metadefs_dir() -> str:
    """The directory of the shipped metadefs catalog (``*.json``)."""
    return _find("metadefs", "metadefs catalog")


def samples_dir() -> str:
    """The directory of the shipped sample configuration files."""
    return _find("etc", "sample configuration")


def samples() -> List[str]:
    """File names of the shipped samples, e.g. ``glance-image-import.conf.sample``."""
    directory = samples_dir()
    return sorted(n for n in os.listdir(directory)
                  if os.path.isfile(os.path.join(directory, n)))


def sample_path(name: str) -> str:
    """The path of one shipped sample; ``name`` with or without ``.sample``."""
    directory = samples_dir()
    for candidate in (name, name + ".sample"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise ShippedDataMissing(
        "no sample named %s; the shipped samples are: %s"
        % (name, ", ".join(samples())))
