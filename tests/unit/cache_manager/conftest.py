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

"""Fixtures: real instance trees (qemu-img) and configured passes."""

import pytest

from glance_ext.cache_manager import cachepass
from glance_ext.testing import cache_manager_trees as trees
from glance_ext.testing.cache_manager_trees import make_conf


@pytest.fixture
def tree(tmp_path) -> trees.Tree:
    return trees.Tree(str(tmp_path))


@pytest.fixture
def standard_tree(tmp_path) -> trees.Tree:
    return trees.build_standard_tree(str(tmp_path))


@pytest.fixture
def run_pass():
    def _run(tree, dry_run=False, force=False, **overrides):
        return cachepass.CachePass(make_conf(tree, **overrides)).run(
            dry_run=dry_run, force=force)
    return _run
