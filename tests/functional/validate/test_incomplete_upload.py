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

"""A ``glance image-stage`` cut short by killing glance-api.

What this proves, against a real glance-api (gunicorn) whose whole process
group is SIGKILLed while the real ``glance image-stage`` is streaming the
data, then started again on the same database and staging directory:
* Glance leaves the image ``uploading`` with a partial staged file and no
  size;
* with our plugins (decompress then validate, the recommended order),
  ``glance image-import`` after the restart does not make it ``active``:
  it goes back to ``queued`` with "the upload did not complete; stage the
  image again" in ``glance image-tasks``, and nothing is left in staging;
  staging the whole image again then imports it;
* without our plugins the same sequence makes the truncated data an
  ``active`` image (so the first test would fail if the check did not run).
"""

import os
import signal
import subprocess
import time

import pytest

from glance_ext.local_glance import client as fixtures

PLUGINS = ["glance_ext_decompress", "glance_ext_validate"]
INCOMPLETE = "the upload did not complete; stage the image again"
MiB = 1024 * 1024
IMAGE_MIB = 64


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    """A 64 MiB raw disk with data all through (not sparse)."""
    path = str(tmp_path_factory.mktemp("data") / "disk.raw")
    chunk = os.urandom(MiB)
    with open(path, "wb") as f:
        for _ in range(IMAGE_MIB):
            f.write(chunk)
    return path


def _create_queued(glance):
    proc = glance.glance("image-create", "--disk-format", "raw",
                         "--container-format", "bare", "--name", "cut")
    return fixtures.parse_table(proc.stdout)["id"]


def _staged_size(glance, image_id):
    try:
        return os.path.getsize(os.path.join(glance.staging_dir, image_id))
    except FileNotFoundError:
        return 0


def _stage_and_kill(glance, image_id, image_file):
    """Feed ``glance image-stage`` slowly; SIGKILL glance-api mid-way."""
    stage = subprocess.Popen([fixtures.GLANCE, "image-stage", image_id],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=glance.env)
    sent = 0
    try:
        with open(image_file, "rb") as src:
            # Half the image at most, and wait until glance-api has written
            # some of it to staging: the crash comes in the middle.
            while sent < IMAGE_MIB // 2 * MiB:
                stage.stdin.write(src.read(MiB))
                stage.stdin.flush()
                sent += MiB
                if _staged_size(glance, image_id) >= 4 * MiB:
                    break
                time.sleep(0.05)
        deadline = time.monotonic() + 30
        while _staged_size(glance, image_id) < 4 * MiB:
            assert time.monotonic() < deadline, glance.log_tail()
            time.sleep(0.1)
        os.killpg(glance.pid, signal.SIGKILL)
    finally:
        try:
            stage.stdin.close()
        except BrokenPipeError:
            pass
        stage.wait(timeout=60)
        err = stage.stderr.read()
    # The client saw the stage fail.
    assert stage.returncode != 0, (sent, err, glance.log_tail())


def _restart(factory, glance, plugins):
    """The same local Glance again (same database and staging)."""
    glance.down()      # forget the dead server's state, keep its database
    glance = fixtures.start_local_glance(glance.state_dir, plugins=plugins)
    factory.started.append(glance)
    return glance


def _crash_during_stage(local_glance_factory, image_file, plugins):
    glance = local_glance_factory(plugins=plugins)
    image_id = _create_queued(glance)
    _stage_and_kill(glance, image_id, image_file)
    glance = _restart(local_glance_factory, glance, plugins)
    image = glance.image(image_id)
    partial = _staged_size(glance, image_id)
    # What Glance leaves: uploading, part of the data, no size recorded.
    assert image["status"] == "uploading", (image, glance.log_tail())
    assert image["size"] is None, image
    assert 0 < partial < IMAGE_MIB * MiB, partial
    glance.glance("image-import", image_id, "--import-method",
                  "glance-direct")
    return glance, image_id, partial, glance.wait_import(image_id)


def test_interrupted_stage_is_refused_then_a_full_stage_imports(
        local_glance_factory, image_file):
    glance, image_id, _partial, image = _crash_during_stage(
        local_glance_factory, image_file, PLUGINS)
    assert image["status"] == "queued", image
    assert image.get("os_glance_failed_import") == "fs", image
    messages = [t["Message"] for t in glance.tasks(image_id)]
    assert any(INCOMPLETE in m for m in messages), messages
    assert glance.staged_file_gone(image_id)
    # A complete stage of the same image now imports.
    glance.stage_and_import(image_id, image_file)
    deadline = time.monotonic() + 180
    while glance.image(image_id)["status"] != "active":
        tasks = glance.api_tasks(image_id)
        assert not (len(tasks) >= 2 and all(
            t["status"] == "failure" for t in tasks)), glance.log_tail()
        assert time.monotonic() < deadline, glance.log_tail()
        time.sleep(0.5)
    image = glance.image(image_id)
    assert image["size"] == IMAGE_MIB * MiB
    assert image["glance_ext_validate_verdict"] == "accepted"
    assert glance.staged_file_gone(image_id)


def test_without_the_plugins_glance_imports_the_truncated_data(
        local_glance_factory, image_file):
    glance, _image_id, partial, image = _crash_during_stage(
        local_glance_factory, image_file, [])
    assert image["status"] == "active", (image, glance.log_tail())
    assert image["size"] == partial, (image, partial)
