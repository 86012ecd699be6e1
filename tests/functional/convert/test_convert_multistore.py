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

"""Functional: stores that want different formats, in a real multi-store
Glance (two file stores, `glance-ext local-glance up --stores fs,fast`).

Proves: an import to both stores whose formats disagree is refused with
a message naming each store's format and the fix, the image is back in
`queued` with both stores failed and nothing left in staging; with
`store_precedence` the same import reaches `active` in both stores in the
preferred store's format, and the served data equals the source.
"""

import pytest

from tests.functional.convert import helpers
from glance_ext.testing import images

STORES = ["fs", "fast"]
OPTIONS = {"store_formats": "fs:qcow2,fast:raw", "default_format": "raw"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return images.ensure(str(tmp_path_factory.mktemp("ms")))["qcow2"]


def _glance(factory, tmp_path_factory, **extra):
    locks = str(tmp_path_factory.mktemp("locks"))
    return factory(plugins=helpers.OUR_PLUGINS, stores=STORES,
                   import_options=helpers.import_options(
                       locks, **dict(OPTIONS, **extra)))


def test_disagreeing_stores_are_refused_clearly(
        module_glance_factory, tmp_path_factory, sample):
    glance = _glance(module_glance_factory, tmp_path_factory)
    image = glance.wait_import(glance.import_file(
        sample.path, sample.claimed, stores=STORES))
    assert image["status"] == "queued", image
    failed = set(image.get("os_glance_failed_import", "").split(","))
    assert failed == set(STORES), image
    message = helpers.task_message(glance, image["id"])
    assert "fast: raw, fs: qcow2" in message, message
    assert "store_precedence" in message, message
    assert not helpers.ours_in_staging(glance, image["id"])


def test_precedence_picks_one_format_for_all_stores(
        module_glance_factory, tmp_path_factory, sample, tmp_path):
    glance = _glance(module_glance_factory, tmp_path_factory,
                     store_precedence="fs")
    image = glance.wait_import(glance.import_file(
        sample.path, sample.claimed, stores=STORES))
    assert image["status"] == "active", image
    assert image["disk_format"] == "qcow2"
    assert set(image["stores"].split(",")) == set(STORES)
    helpers.assert_stored_equals(glance, image, sample.path, "qcow2",
                                 str(tmp_path))
