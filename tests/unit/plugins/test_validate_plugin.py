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

"""The validate task inside a real taskflow engine.

Glance's image repository and import lock need a running Glance (covered by
tests/functional/validate); here the ActionWrapper is replaced by a minimal
one that hands out Glance's real ``_ImportActions`` over an in-memory image,
so the store-list bookkeeping is Glance's own code.
"""

import os
import shutil

import pytest
import taskflow.engines
from oslo_config import cfg
from taskflow import task
from taskflow.patterns import linear_flow as lf

from glance.common import exception as glance_exception

from glance_ext.inspection import options
from glance_ext.plugins import base
from glance_ext.plugins import validate
from glance_ext.testing.plugin_doubles import FakeActionWrapper, FakeImage


class Probe(task.Task):
    """A later plugin: receives the report without re-reading the file."""

    def __init__(self, fail=False):
        super().__init__(name="probe")
        self.fail = fail
        self.seen = None

    def execute(self, file_path, glance_ext_validation_report=None):
        self.seen = glance_ext_validation_report
        if self.fail:
            raise RuntimeError("later plugin failed")


@pytest.fixture
def policy_conf(monkeypatch, tmp_path):
    """A private ConfigOpts for the plugin, loaded from a real file."""
    def make(text="", plugins=("glance_ext_validate",)):
        path = tmp_path / "glance-image-import.conf"
        path.write_text("[image_import_opts]\nimage_import_plugins = %s\n"
                        "[glance_ext_validate]\n%s"
                        % (",".join(plugins), text))
        conf = cfg.ConfigOpts()
        options.register_opts(conf)
        conf.register_opts([cfg.ListOpt("image_import_plugins")],
                           group="image_import_opts")
        conf(args=[], default_config_files=[str(path)],
             default_config_dirs=[])
        monkeypatch.setattr(validate, "CONF", conf)
        return conf
    return make


def _stage(corpus_case, tmp_path, image):
    """Stage the case's file as image-stage does: Glance records the size
    once the whole upload is written."""
    staged = tmp_path / "staging" / image.image_id
    staged.parent.mkdir(exist_ok=True)
    shutil.copyfile(corpus_case.file, staged)
    image.size = os.path.getsize(staged)
    return str(staged)


GLANCE_DIRECT = {"method": {"name": "glance-direct"}}


def _run(staged, image, probe=None):
    flow = validate.get_flow(task_id="t1", task_type="api_image_import",
                             action_wrapper=FakeActionWrapper(image),
                             backend=["fs"], import_req=GLANCE_DIRECT)
    outer = lf.Flow("import").add(flow)
    if probe:
        outer.add(probe)
    taskflow.engines.run(outer, store={"file_path": "file://" + staged})


def test_accepted_image_gets_properties_and_report_handoff(
        corpus, tmp_path, policy_conf):
    policy_conf()
    image = FakeImage("qcow2")
    # Left over from an earlier rejected import of the same image.
    image.extra_properties["glance_ext_validate_reason"] = "old reason"
    staged = _stage(corpus["good_qcow2"], tmp_path, image)
    probe = Probe()
    _run(staged, image, probe)
    assert image.status == "importing"           # untouched on success
    assert image.disk_format == "qcow2"
    props = image.extra_properties
    assert props["glance_ext_validate_verdict"] == "accepted"
    assert props["glance_ext_validate_detected_format"] == "qcow2"
    assert "glance_ext_validate_reason" not in props
    assert probe.seen["verdict"] == "accepted"
    assert probe.seen["detected_format"] == "qcow2"
    assert os.path.exists(staged)


def test_rejection_reverts_to_queued_and_deletes_staged_file(
        corpus, tmp_path, policy_conf):
    policy_conf()
    image = FakeImage("qcow2")
    staged = _stage(corpus["qcow2_backing_abs"], tmp_path, image)
    with pytest.raises(glance_exception.UploadException) as err:
        _run(staged, image)
    assert "qcow2 backing file is not allowed" in str(err.value)
    assert image.status == "queued"
    assert image.extra_properties["os_glance_importing_to_stores"] == ""
    assert image.extra_properties["os_glance_failed_import"] == "fs"
    assert image.extra_properties["glance_ext_validate_verdict"] == \
        "rejected"
    assert not os.path.exists(staged)


def test_failure_of_a_later_plugin_also_reverts(corpus, tmp_path,
                                                policy_conf):
    policy_conf()
    image = FakeImage("raw")
    staged = _stage(corpus["good_raw"], tmp_path, image)
    with pytest.raises(RuntimeError):
        _run(staged, image, Probe(fail=True))
    assert image.status == "queued"
    assert image.extra_properties["os_glance_failed_import"] == "fs"
    assert not os.path.exists(staged)


def test_correct_policy_changes_disk_format(corpus, tmp_path, policy_conf):
    policy_conf("format_mismatch_policy = correct\n")
    image = FakeImage("raw")
    staged = _stage(corpus["qcow2_claimed_raw"], tmp_path, image)
    _run(staged, image)
    assert image.disk_format == "qcow2"
    assert image.extra_properties["glance_ext_validate_claimed_format"] == \
        "raw"


@pytest.mark.parametrize("text,needle", [
    ("format_mismatch_policy = sometimes\n", "format_mismatch_policy"),
    ("max_virtual_size_gb = big\n", "max_virtual_size_gb"),
])
def test_misconfiguration_fails_the_import_clearly(corpus, tmp_path,
                                                   policy_conf, text, needle):
    policy_conf(text)
    image = FakeImage("raw")
    staged = _stage(corpus["good_raw"], tmp_path, image)
    with pytest.raises(glance_exception.UploadException) as err:
        _run(staged, image)
    assert "misconfigured" in str(err.value) and needle in str(err.value)
    assert image.status == "queued"


def test_conversion_before_validation_is_refused(corpus, tmp_path,
                                                 policy_conf):
    policy_conf(plugins=("image_conversion", "glance_ext_validate"))
    image = FakeImage("raw")
    staged = _stage(corpus["good_raw"], tmp_path, image)
    with pytest.raises(glance_exception.UploadException) as err:
        _run(staged, image)
    assert "must run before image_conversion" in str(err.value)


def test_plugin_failure_text_is_verbatim():
    exc = base.PluginFailure("100% wrong: %(x)s")
    assert str(exc) == "100% wrong: %(x)s"
    assert isinstance(exc, glance_exception.UploadException)


def test_local_path():
    assert base.local_path("file:///a/b") == "/a/b"
    assert base.local_path("/a/b") == "/a/b"


def test_web_download_leaves_status_to_glance_download_revert(
        corpus, tmp_path, policy_conf):
    # Glance's download task reverts after us and sets queued itself; doing
    # it twice would fail its revert (queued -> queued).
    policy_conf()
    image = FakeImage("qcow2")
    staged = _stage(corpus["qcow2_backing_abs"], tmp_path, image)
    image.size = None     # Glance records no size before the store upload
    flow = validate.get_flow(
        task_id="t1", task_type="api_image_import",
        action_wrapper=FakeActionWrapper(image), backend=["fs"],
        import_req={"method": {"name": "web-download", "uri": "http://x"}})
    with pytest.raises(glance_exception.UploadException) as err:
        taskflow.engines.run(flow, store={"file_path": "file://" + staged})
    assert "qcow2 backing file is not allowed" in str(err.value)
    assert image.status == "importing"
    assert image.extra_properties["glance_ext_validate_verdict"] == \
        "rejected"
