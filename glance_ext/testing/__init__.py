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

"""Test support shared by the tests, the demo and the benchmarks.

Builders of the images nobody has to commit (the validate corpus,
conversion samples, archives, guest disks with real filesystems, nova
cache trees), doubles of what Glance hands an import plugin, and helpers
that find our qemu processes. Like stevedore's built-in test seams they
ship with the package so that everything exercising glance_ext uses one
copy; the engines, plugins and middleware never import them (the layering
test keeps it so). They need the tools the tests need (qemu-img, mkfs.*).

Generated data goes under ``data_dir()``, outside any checkout.
"""

import os
import tempfile
from typing import Optional


def data_dir(name: str) -> str:
    """A directory for generated test data named ``name``, created.

    ``$GLANCE_EXT_TEST_DATA`` if set, else a per-user directory in the
    system's temporary directory: never inside the checkout, and shared
    by runs so a generator's cache survives between them.
    """
    root = os.environ.get("GLANCE_EXT_TEST_DATA") or os.path.join(
        tempfile.gettempdir(), "glance-ext-test-data-%d" % os.getuid())
    path = os.path.join(root, name)
    os.makedirs(path, exist_ok=True)
    return path


def needs(missing: Optional[str]) -> None:
    """In a test: ``missing`` names what the test needs and this machine
    lacks (None: nothing). Outside CI the test is skipped with that
    reason; under ``CI=true`` it fails, so CI never passes by skipping
    (``tools/install-system-deps.sh --test`` installs what the tests
    need)."""
    if not missing:
        return
    import pytest
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true and this test cannot run: %s" % missing)
    pytest.skip(missing)
