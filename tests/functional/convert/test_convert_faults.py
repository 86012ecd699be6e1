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

"""Faults around a conversion inside a real glance-api.

The conversions here are made slow on purpose with the plugin's own
``rate_limit_mb`` (qemu-img convert -r): real qemu-img, real Glance, just
throttled so a test can look at, kill or restart them mid-way. What this
proves, for each fault: the image ends ``queued`` with the stores in
``os_glance_failed_import``, a readable reason in ``glance image-tasks``,
nothing of ours (nor the staged data) left in staging nor in the store,
and staging the data again and importing works, on both paths (raw
outputs streamed into the store upload, and written to staging):
* progress: the task message shows percent and bytes while converting;
* qemu-img killed (SIGKILL from outside);
* qemu-img timed out (scaled wall-clock limit);
* not enough staging space (staging on a small tmpfs the test mounts):
  refused on the file path; the streaming path needs none and succeeds;
* the store fails after the conversion (a file already at the store path);
(glance-api killed or stopped while converting, and at every other step
of an import: tests/functional/recovery.)
"""

import os
import subprocess
import time

import pytest

from glance_ext import testing
from glance_ext.testing import qemu_procs
from glance_ext.local_glance import client
from tests.functional.convert import helpers
from glance_ext.testing import images

MiB = 1024 * 1024
SLOW_MIB = 24


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("fault-images")
    samples = images.ensure(str(d / "samples"))
    slow = images.pattern_image(str(d / "slow.qcow2"), SLOW_MIB, "qcow2")
    return {"slow": slow, "small": samples["qcow2"].path}


# Every fault on both paths: raw outputs streamed into the store upload
# (nbdcopy + qemu-nbd, the default) and written to staging as a file.
PATHS = {"stream": "true", "file": "false"}


@pytest.fixture(scope="module", params=sorted(PATHS))
def path(request):
    return request.param


@pytest.fixture(scope="module")
def slow_glance(module_glance_factory, tmp_path_factory, path):
    return module_glance_factory(
        plugins=helpers.OUR_PLUGINS,
        import_options=helpers.import_options(
            str(tmp_path_factory.mktemp("locks")), rate_limit_mb="4",
            stream_raw=PATHS[path]))


def converter_pids(image_id):
    """qemu-img convert, or the streaming nbdcopy (first: killed first,
    so it dies by the signal and not of its qemu-nbd's death) and its
    qemu-nbd."""
    pids = qemu_procs.qemu_img_pids(image_id)
    for name in (b"nbdcopy", b"qemu-nbd"):
        pids += [pid for pid, cmd in qemu_procs._cmdlines()
                 if cmd and cmd[0].endswith(name)
                 and any(image_id.encode() in arg for arg in cmd)]
    return pids


def wait_for_conversion(glance, image_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = converter_pids(image_id)
        if pids:
            return pids
        time.sleep(0.1)
    raise AssertionError("no qemu-img convert for %s; log:\n%s"
                         % (image_id, glance.log_tail()))


def create_queued(glance, disk_format="qcow2"):
    proc = glance.glance("image-create", "--disk-format", disk_format,
                         "--container-format", "bare", "--name", "fault")
    return client.parse_table(proc.stdout)["id"]


def retry_works(glance, image_id, path):
    image = helpers.import_again(glance, image_id, path)
    assert image["status"] == "active", (image, glance.log_tail())
    assert image["disk_format"] == "raw"
    assert not helpers.ours_in_staging(glance, image_id)


def test_progress_in_task_message(slow_glance, data, tmp_path, path):
    image_id = slow_glance.import_file(data["slow"], "qcow2")
    seen = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        image = slow_glance.image(image_id)
        seen.add(helpers.task_message(slow_glance, image_id))
        if image["status"] in ("active", "queued"):
            break
        time.sleep(0.2)
    progress = sorted(m for m in seen
                      if m.startswith("glance_ext_convert: converting "
                                      "qcow2 to raw: "))
    assert len(progress) >= 2, seen
    assert any("of 24.0 MiB" in m and "%" in m for m in progress), progress
    image = slow_glance.wait_import(image_id)
    assert image["status"] == "active"
    assert image["glance_ext_convert_path"] == path
    helpers.assert_stored_equals(slow_glance, image, data["slow"], "qcow2",
                                 str(tmp_path))


def test_qemu_img_killed(slow_glance, data):
    image_id = slow_glance.import_file(data["slow"], "qcow2")
    for pid in wait_for_conversion(slow_glance, image_id):
        os.kill(pid, 9)
    image = slow_glance.wait_import(image_id)
    helpers.assert_reverted(slow_glance, image, "killed by signal 9")
    retry_works(slow_glance, image_id, data["small"])


def test_store_fails_after_conversion(slow_glance, data):
    image_id = create_queued(slow_glance)
    # The file store refuses to overwrite: a file already at the image's
    # store path makes the upload fail after our conversion succeeded.
    blocker = os.path.join(slow_glance.state_dir, "images", image_id)
    with open(blocker, "wb") as fh:
        fh.write(b"in the way")
    try:
        slow_glance.stage_and_import(image_id, data["small"])
        image = slow_glance.wait_import(image_id)
        helpers.assert_reverted(slow_glance, image, "")
        assert "glance_ext_convert" not in helpers.task_message(
            slow_glance, image_id)
    finally:
        os.unlink(blocker)
    retry_works(slow_glance, image_id, data["small"])


@pytest.mark.parametrize("way", sorted(PATHS))
def test_timeout(module_glance_factory, tmp_path_factory, data, way):
    glance = module_glance_factory(
        plugins=helpers.OUR_PLUGINS,
        import_options=helpers.import_options(
            str(tmp_path_factory.mktemp("locks")), rate_limit_mb="2",
            timeout_base_seconds="3", timeout_seconds_per_gb="0",
            stream_raw=PATHS[way]))
    image_id = glance.import_file(data["slow"], "qcow2")
    image = glance.wait_import(image_id)
    helpers.assert_reverted(glance, image, "did not finish within 3s")
    assert not converter_pids(image_id)
    assert not os.path.exists(os.path.join(glance.store_dir, image_id))
    retry_works(glance, image_id, data["small"])


@pytest.fixture(params=sorted(PATHS))
def small_staging(module_glance_factory, tmp_path_factory, request):
    glance = module_glance_factory(
        plugins=helpers.OUR_PLUGINS,
        import_options=helpers.import_options(
            str(tmp_path_factory.mktemp("locks")),
            stream_raw=PATHS[request.param]))
    glance.path = request.param
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m",
                           "glance-ext-test", glance.staging_dir],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode:
        testing.needs("cannot mount a small tmpfs for staging here (%s); the "
                      "unit tests cover the refusal" % proc.stdout.strip())
    yield glance
    subprocess.run(["umount", "-l", glance.staging_dir])


def test_not_enough_staging_space(small_staging, data, tmp_path):
    glance = small_staging
    # 24 MiB staged of 48: the raw output needs 24 MiB + 10% + 16 MiB.
    image_id = glance.import_file(data["slow"], "qcow2")
    image = glance.wait_import(image_id)
    if glance.path == "stream":
        # Streaming writes no output to staging: the same import fits.
        assert image["status"] == "active", glance.log_tail()
        helpers.assert_stored_equals(glance, image, data["slow"], "qcow2",
                                     str(tmp_path))
        assert glance.staged_files() == []
        return
    helpers.assert_reverted(glance, image, "not enough free space in the "
                                           "staging area to convert")
    assert glance.staged_files() == []
    retry_works(glance, image_id, data["small"])
