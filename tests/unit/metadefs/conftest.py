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

"""Shared helpers: a writable copy of the shipped catalog for mutation tests."""

import json
import os
import shutil

import pytest

from glance_ext.metadefs import catalog as catalog_mod

CATALOG_DIR = catalog_mod.default_directory()


@pytest.fixture
def catalog_copy(tmp_path):
    """A copy of metadefs/ that a test may edit; returns (dir, edit)."""
    target = tmp_path / "metadefs"
    shutil.copytree(CATALOG_DIR, str(target))

    def edit(filename, change):
        path = os.path.join(str(target), filename)
        with open(path) as f:
            doc = json.load(f)
        change(doc)
        with open(path, "w") as f:
            json.dump(doc, f, indent=4)
        return path
    return str(target), edit


@pytest.fixture(scope="session")
def shipped_catalog():
    return catalog_mod.load_directory(CATALOG_DIR)
