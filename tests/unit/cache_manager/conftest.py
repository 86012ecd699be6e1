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
from oslo_config import cfg

from glance_ext.cache_manager import cachepass
from glance_ext.cache_manager import options
from tests import cache_manager_trees as trees


def make_conf(tree: trees.Tree, **overrides) -> cfg.ConfigOpts:
    """Config as the CLI builds it, with nova's removal off by default."""
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf([], project='glance-ext-test', default_config_files=[])
    conf.set_override('instances_path', tree.instances)
    conf.set_override('host', 'testhost')
    conf.set_override('remove_unused_base_images', False, 'image_cache')
    for key, value in overrides.items():
        group, _, name = key.rpartition('__')
        conf.set_override(name, value, group or None)
    return conf


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
