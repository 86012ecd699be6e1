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

"""The convert task inside a real taskflow engine, with real qemu-img.

Glance's repositories need a running Glance (tests/functional/convert);
here a minimal ActionWrapper hands out Glance's real ``_ImportActions``
over an in-memory image, so the store-list bookkeeping is Glance's code.
Proves: the task converts and hands the new file to later tasks, records
what it changed, and a later failure restores the image as it was before
the conversion (so staging the same data again works) and deletes every
file; the store-format conflict and bad options fail with clear text.
"""

import os
import shutil

import pytest
import taskflow.engines
from glance.async_.flows.api_image_import import _ImportActions
from oslo_config import cfg
from taskflow import task
from taskflow.patterns import linear_flow as lf

from glance_ext.plugins import base
from glance_ext.plugins import convert
from glance_ext.testing.plugin_doubles import StagedData

IMAGE_ID = "11111111-2222-3333-4444-555555555555"


class FakeImage:
    def __init__(self, disk_format):
        self.image_id = IMAGE_ID
        self.status = "importing"
        self.disk_format = disk_format
        self.container_format = "bare"
        self.virtual_size = None
        self.size = 1
        self.locations = []
        self.extra_properties = {"os_glance_importing_to_stores": "fs",
                                 "os_glance_failed_import": ""}


class FakeActionWrapper:
    def __init__(self, image):
        self.image = image
        self.image_id = image.image_id

    def __enter__(self):
        return _ImportActions(self.image)

    def __exit__(self, *exc):
        return False

    def assert_task_lock(self):
        pass

    def drop_lock_for_task(self):
        # What Glance calls once at the end of an import, either way.
        self.dropped = True


class Probe(task.Task):
    """A later task: records the file it is given, optionally fails."""

    def __init__(self, fail=False):
        super().__init__(name="probe")
        self.fail = fail
        self.seen = None

    def execute(self, file_path):
        self.seen = file_path
        if self.fail:
            raise RuntimeError("store upload failed")


@pytest.fixture
def conf(tmp_path):
    overrides = []

    def set_(**values):
        for key, value in values.items():
            cfg.CONF.set_override(key, value, group="glance_ext_convert")
            overrides.append(key)
    set_(lock_dir=str(tmp_path / "slots"), free_space_reserve_mb=0)
    yield set_
    for key in overrides:
        cfg.CONF.clear_override(key, group="glance_ext_convert")


def run(staged, image, stores=("fs",), probe=None):
    """The flow as Glance runs it; returns the action wrapper, whose
    ``drop_lock_for_task`` ends the import as Glance would."""
    wrapper = FakeActionWrapper(image)
    flow = lf.Flow("api_image_import")
    flow.add(StagedData(staged))
    flow.add(convert.ConvertImage(task_id="t1",
                                  task_type="api_image_import",
                                  action_wrapper=wrapper,
                                  stores=list(stores)))
    if probe:
        flow.add(probe)
    try:
        taskflow.engines.run(flow)
    except Exception:
        wrapper.drop_lock_for_task()     # Glance's _ImageLock revert
        raise
    return wrapper


def stage(samples, name, tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir(exist_ok=True)
    staged = str(staging / IMAGE_ID)
    shutil.copy(samples[name].path, staged)
    return staged


def test_converts_and_hands_over_the_new_file(samples, tmp_path, conf):
    staged = stage(samples, "vmdk_stream_optimized", tmp_path)
    image = FakeImage("vmdk")
    probe = Probe()
    wrapper = run(staged, image, probe=probe)
    out = staged + ".glance_ext_convert.raw"
    assert probe.seen == "file://" + out
    # The user's upload is kept until the import has succeeded (a crash
    # before can keep it), then deleted: Glance deletes only the file_path
    # we handed on.
    assert os.path.exists(staged)
    assert image.disk_format == "raw" and image.container_format == "bare"
    assert image.size == os.path.getsize(out)
    assert image.virtual_size == 4 * 1024 * 1024
    props = image.extra_properties
    assert props["glance_ext_convert_source_disk_format"] == "vmdk"
    assert props["glance_ext_convert_source_format"] == "vmdk"
    assert props["glance_ext_convert_target_format"] == "raw"
    journal = str(tmp_path / "glance-ext-state" / "journal")
    assert len(os.listdir(journal)) == 1
    wrapper.drop_lock_for_task()          # Glance's _CompleteTask
    assert not os.path.exists(staged)
    assert os.listdir(journal) == []


def test_later_failure_restores_image_and_deletes_files(
        samples, tmp_path, conf):
    staged = stage(samples, "qcow2", tmp_path)
    size = os.path.getsize(staged)
    image = FakeImage("qcow2")
    image.size = size
    with pytest.raises(RuntimeError):
        run(staged, image, probe=Probe(fail=True))
    assert image.status == "queued"
    assert image.disk_format == "qcow2" and image.size == size
    assert not [k for k in image.extra_properties
                if k.startswith("glance_ext_convert_")]
    assert image.extra_properties["os_glance_failed_import"] == "fs"
    assert image.extra_properties["os_glance_importing_to_stores"] == ""
    assert os.listdir(str(tmp_path / "staging")) == []
    assert os.listdir(str(tmp_path / "glance-ext-state" / "journal")) == []


def test_stores_that_disagree(samples, tmp_path, conf):
    conf(store_formats={"ceph": "raw", "fs": "qcow2"})
    staged = stage(samples, "vdi", tmp_path)
    image = FakeImage("vdi")
    with pytest.raises(base.PluginFailure) as err:
        run(staged, image, stores=("ceph", "fs"))
    assert "want different disk formats (ceph: raw, fs: qcow2)" in \
        str(err.value)
    assert image.status == "queued"
    assert image.extra_properties["os_glance_failed_import"] == "ceph,fs"
    assert not os.path.exists(staged)


def test_same_format_needs_nothing(samples, tmp_path, conf):
    conf(default_format="qcow2")
    staged = stage(samples, "qcow2", tmp_path)
    image = FakeImage("qcow2")
    probe = Probe()
    run(staged, image, probe=probe)
    assert probe.seen == "file://" + staged and os.path.exists(staged)
    assert image.disk_format == "qcow2"


def test_misconfiguration_names_the_option(samples, tmp_path, conf):
    conf(store_formats={"fs": "ext4"})
    staged = stage(samples, "qcow2", tmp_path)
    with pytest.raises(base.PluginFailure) as err:
        run(staged, FakeImage("qcow2"))
    assert "store_formats" in str(err.value)
    assert "glance-image-import.conf" in str(err.value)


# -- the streaming path ------------------------------------------------------

class UploadingWrapper(FakeActionWrapper):
    """Like Glance 33's ImportActionWrapper, it keeps the image of the
    running ``with`` block in ``_image`` (what the stream's size check
    relies on)."""

    def __enter__(self):
        self._image = self.image
        return _ImportActions(self.image)


class GlanceLikeUpload(task.Task):
    """What Glance's store upload does with ``file_path``, step by step
    (glance/common/scripts/image_import/main.py and location.py): compare
    the image's size with the file's st_size, read it in 64 KiB chunks,
    then compare the bytes stored with the image's size."""

    def __init__(self, image, kill_after=None):
        super().__init__(name="upload")
        self.image = image
        self.kill_after = kill_after
        self.count = 0

    def execute(self, file_path):
        from glance.common import exception as glance_exception
        from glance_ext.testing import qemu_procs

        path = file_path[len("file://"):]
        size = os.path.getsize(path)
        if self.image.size is not None and self.image.size != size:
            raise glance_exception.ImportTaskError("Image size mismatch")
        with open(path, "rb") as fh:
            while True:
                data = fh.read(65536)
                if not data:
                    break
                self.count += len(data)
                if self.kill_after and self.count >= self.kill_after:
                    self.kill_after = None
                    for pid in qemu_procs.pids_naming(IMAGE_ID):
                        os.kill(pid, 9)
        if self.image.size is not None and self.count != self.image.size:
            raise glance_exception.UploadException(
                "size of uploaded data is different")
        self.image.size = self.count


def _stream_tools():
    from glance_ext import testing
    testing.needs(None if shutil.which("nbdcopy") and shutil.which(
        "qemu-nbd") else "nbdcopy (libnbd-bin) and qemu-nbd are needed")


def run_streaming(staged, image, upload):
    wrapper = UploadingWrapper(image)
    flow = lf.Flow("api_image_import")
    flow.add(StagedData(staged))
    flow.add(convert.ConvertImage(task_id="t1",
                                  task_type="api_image_import",
                                  action_wrapper=wrapper, stores=["fs"]))
    flow.add(upload)
    try:
        taskflow.engines.run(flow)
    except Exception:
        wrapper.drop_lock_for_task()
        raise
    return wrapper


def test_expected_size_compares_as_an_int_unless_the_stream_failed():
    ok = convert.ExpectedSize(5, lambda: None)
    assert not (5 != ok) and (4 != ok) and ok == 5 and int(ok) == 5
    failed = convert.ExpectedSize(5, lambda: base.PluginFailure("why"))
    with pytest.raises(base.PluginFailure):
        4 != failed


def test_file_path_recorded_without_the_size_hook(samples, tmp_path, conf):
    staged = stage(samples, "qcow2", tmp_path)
    image = FakeImage("qcow2")
    run(staged, image, probe=Probe())
    assert image.extra_properties["glance_ext_convert_path"] == "file"
    assert "cannot be told the size" in \
        image.extra_properties["glance_ext_convert_path_reason"]


def test_streamed_into_the_upload(samples, tmp_path, conf):
    _stream_tools()
    staged = stage(samples, "qcow2", tmp_path)
    image = FakeImage("qcow2")
    upload = GlanceLikeUpload(image)
    wrapper = run_streaming(staged, image, upload)
    props = image.extra_properties
    assert props["glance_ext_convert_path"] == "stream"
    assert image.disk_format == "raw"
    assert upload.count == image.size == image.virtual_size == 4 * 1024 ** 2
    assert os.listdir(str(tmp_path / "staging")) == [IMAGE_ID]
    wrapper.drop_lock_for_task()
    assert os.listdir(str(tmp_path / "staging")) == []


def test_stream_cut_short_fails_the_upload_with_our_reason(
        tmp_path, conf):
    _stream_tools()
    from glance_ext.testing import images
    conf(rate_limit_mb=4)
    staging = tmp_path / "staging"
    staging.mkdir()
    staged = str(staging / IMAGE_ID)
    images.pattern_image(staged, 24, "qcow2")
    image = FakeImage("qcow2")
    image.size = os.path.getsize(staged)
    upload = GlanceLikeUpload(image, kill_after=4 * 1024 ** 2)
    with pytest.raises(base.PluginFailure) as err:
        run_streaming(staged, image, upload)
    assert "killed by signal 9" in str(err.value)
    assert upload.count < 24 * 1024 ** 2
    assert image.status == "queued" and image.disk_format == "qcow2"
    assert image.extra_properties["os_glance_failed_import"] == "fs"
    assert os.listdir(str(staging)) == []
