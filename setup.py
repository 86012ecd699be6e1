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

"""Build hook: the files glance_ext reads at run time travel in the wheel.

The top-level ``metadefs/`` (the catalog) and ``etc/`` (the generated
sample configs) stay the source of truth in the repository. A wheel
built from a checkout or from the sdist carries copies of them inside the
package, as ``glance_ext/data/metadefs/*.json`` and
``glance_ext/data/etc/*``, where ``glance_ext.shipped`` finds them through
``importlib.resources`` whatever the install scheme (venv, ``--user``,
``--target``). setuptools cannot map a directory outside the package into
package data declaratively, hence this small ``build_py``.
"""

import glob
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
# (source glob relative to the checkout, destination inside the package)
SHIPPED = (
    ("metadefs/*.json", "glance_ext/data/metadefs"),
    ("etc/*.sample", "glance_ext/data/etc"),
)


class BuildPyWithData(build_py):
    """``build_py`` that also copies the catalog and the samples."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            # An editable install reads metadefs/ and etc/ of the checkout.
            return
        for pattern, target in SHIPPED:
            files = sorted(glob.glob(os.path.join(HERE, pattern)))
            if not files:
                raise SystemExit("build: nothing matches %s; run the build "
                                 "from a complete checkout or sdist"
                                 % pattern)
            dest = os.path.join(self.build_lib, target)
            os.makedirs(dest, exist_ok=True)
            for path in files:
                shutil.copy2(path, dest)


setup(cmdclass={"build_py": BuildPyWithData})
