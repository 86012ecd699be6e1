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

"""Incomplete uploads: staged data that is not what image-stage recorded.

The shared check (``plugins.base.require_complete_upload``) and the first
step of both plugins that can see the staged data first (decompress,
validate), inside a real taskflow engine over Glance's real import actions
(see glance_ext/testing/plugin_doubles.py). The crash itself is in
tests/functional/validate/test_incomplete_upload.py.
"""

import gzip
import os
import shutil

import pytest
import taskflow.engines
from oslo_config import cfg
from taskflow.patterns import linear_flow as lf

from glance.common import exception as glance_exception

from glance_ext.decompression import options as decompress_options
from glance_ext.inspection import options as validate_options
from glance_ext.plugins import base
from glance_ext.plugins import decompress
from glance_ext.plugins import validate
from glance_ext.testing.plugin_doubles import (FakeActionWrapper, FakeImage,
                                               StagedData)

GLANCE_DIRECT = {"method": {"name": "glance-direct"}}
WEB_DOWNLOAD = {"method": {"name": "web-download", "uri": "http://x/i"}}


@pytest.fixture
def confs(monkeypatch):
    """Private option sets for both plugins, all defaults."""
    for module, opts in ((validate, validate_options),
                         (decompress, decompress_options)):
        conf = cfg.ConfigOpts()
        opts.register_opts(conf)
        conf.register_opts([cfg.ListOpt("image_import_plugins")],
                           group="image_import_opts")
        conf(args=[], default_config_files=[], default_config_dirs=[])
        monkeypatch.setattr(module, "CONF", conf)


def _staged(tmp_path, source):
    path = tmp_path / FakeImage("raw").image_id
    shutil.copyfile(source, path)
    return str(path)


def _run(plugins, image, staged, import_req=GLANCE_DIRECT):
    # One action wrapper for the whole import, as Glance hands its tasks.
    wrapper = FakeActionWrapper(image)
    flow = lf.Flow("import").add(StagedData(staged))
    for plugin in plugins:
        flow.add(plugin.get_flow(
            task_id="t1", task_type="api_image_import",
            action_wrapper=wrapper, backend=["fs"],
            import_req=import_req, task_repo=None))
    taskflow.engines.run(flow)


@pytest.mark.parametrize("recorded,expect", [
    (None, "Glance recorded no size"),
    (4096, "Glance recorded 4096 bytes"),
])
def test_shared_check_refuses_other_sizes(tmp_path, recorded, expect):
    path = tmp_path / "staged"
    path.write_bytes(b"x" * 1000)
    with pytest.raises(base.PluginFailure) as err:
        base.require_complete_upload("p", "glance-direct", recorded,
                                     str(path))
    text = str(err.value)
    assert base.INCOMPLETE_UPLOAD in text
    assert "the staged data is 1000 bytes" in text and expect in text


def test_shared_check_accepts_the_recorded_size(tmp_path):
    path = tmp_path / "staged"
    path.write_bytes(b"x" * 1000)
    base.require_complete_upload("p", "glance-direct", 1000, str(path))


def test_shared_check_missing_file_is_incomplete(tmp_path):
    with pytest.raises(base.PluginFailure) as err:
        base.require_complete_upload("p", "glance-direct", 10,
                                     str(tmp_path / "gone"))
    assert "the staged data is missing" in str(err.value)


@pytest.mark.parametrize("method", ["web-download", "glance-download"])
def test_shared_check_leaves_download_methods_alone(tmp_path, method):
    # Their download task writes the file and checks its length; Glance
    # records no size before the store upload.
    path = tmp_path / "staged"
    path.write_bytes(b"x" * 1000)
    base.require_complete_upload("p", method, None, str(path))


@pytest.mark.parametrize("plugins", [
    [validate], [decompress, validate], [decompress]],
    ids=["validate", "decompress+validate", "decompress"])
def test_truncated_stage_is_refused_and_cleaned(corpus, tmp_path, confs,
                                                plugins):
    image = FakeImage("qcow2")
    image.status = "importing"
    staged = _staged(tmp_path, corpus["good_qcow2"].file)
    # What a glance-api killed mid-stage leaves: part of the data, no size.
    with open(staged, "r+b") as f:
        f.truncate(os.path.getsize(staged) // 2)
    with pytest.raises(glance_exception.UploadException) as err:
        _run(plugins, image, staged)
    first = plugins[0].PLUGIN_NAME
    assert str(err.value).startswith("Import refused by %s: %s"
                                     % (first, base.INCOMPLETE_UPLOAD))
    assert image.status == "queued"
    assert image.extra_properties["os_glance_failed_import"] == "fs"
    assert not os.path.exists(staged)


def test_size_of_an_earlier_stage_does_not_pass(corpus, tmp_path, confs):
    image = FakeImage("qcow2")
    staged = _staged(tmp_path, corpus["good_qcow2"].file)
    image.size = os.path.getsize(staged) + 512
    with pytest.raises(glance_exception.UploadException) as err:
        _run([validate], image, staged)
    assert base.INCOMPLETE_UPLOAD in str(err.value)


def test_decompressed_data_passes_validate_check(corpus, tmp_path, confs):
    # decompress hands on new data and records its size: validate, after
    # it, must accept the new data (the upload was checked once, first).
    image = FakeImage("qcow2")
    gz = tmp_path / "image.gz"
    with open(corpus["good_qcow2"].file, "rb") as src, \
            gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    staged = _staged(tmp_path, gz)
    image.size = os.path.getsize(staged)
    _run([decompress, validate], image, staged)
    assert image.size == os.path.getsize(corpus["good_qcow2"].file)
    assert image.extra_properties["glance_ext_validate_verdict"] == \
        "accepted"


def test_web_download_without_recorded_size_is_validated(corpus, tmp_path,
                                                         confs):
    image = FakeImage("qcow2")
    staged = _staged(tmp_path, corpus["good_qcow2"].file)
    assert image.size is None
    _run([decompress, validate], image, staged, import_req=WEB_DOWNLOAD)
    assert image.extra_properties["glance_ext_validate_verdict"] == \
        "accepted"
