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

"""Streaming conversion and copy-image inside a real glance-api.

What this proves, through the real glance CLI and API:
* qcow2, compressed qcow2, streamOptimized VMDK, VHD and VHDX imported to
  a raw store go through the streaming path (``glance_ext_convert_path``
  is ``stream``), and the data Glance serves equals the source
  (``qemu-img compare``); the stored size is the virtual size;
* while they import, staging never holds more than the staged source plus
  64 MiB (measured every 20 ms) and never a converted file: only the
  staged upload and the FIFO ever appear there; nothing stays after;
* an import to two stores takes the file path (recorded with its reason)
  and lands in both stores with the source's data;
* copy-image of a qcow2 image to a store whose target format is raw is
  refused with a 409 whose message names the store and both formats, and
  the image stays in its one store; with
  ``allow_copy_image_format_change`` the same copy goes through.
The fault tests (tests/functional/convert/test_convert_faults.py) run on
both paths.
"""

import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from glance_ext.testing import images
from tests.functional.convert import helpers

MiB = 1024 * 1024
SIZE_MIB = 40
FORMATS = {
    # name: (claimed disk_format, qemu driver, qemu-img convert args)
    "qcow2": ("qcow2", "qcow2", ["-O", "qcow2"]),
    "qcow2_compressed": ("qcow2", "qcow2", ["-c", "-O", "qcow2"]),
    "vmdk_stream_optimized": ("vmdk", "vmdk", [
        "-O", "vmdk", "-o", "subformat=streamOptimized"]),
    "vhd": ("vhd", "vpc", ["-O", "vpc", "-o", "force_size=on"]),
    "vhdx": ("vhdx", "vhdx", ["-O", "vhdx"]),
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """40 MiB disks: 24 MiB of varied data around a 16 MiB hole."""
    d = tmp_path_factory.mktemp("stream-images")
    raw = str(d / "base.raw")
    block = bytes(range(256)) * 4096
    with open(raw, "wb") as fh:
        for i in range(SIZE_MIB):
            if 12 <= i < 28:
                fh.seek(MiB, os.SEEK_CUR)
            else:
                fh.write(bytes([i]) + block[1:])
        fh.truncate(SIZE_MIB * MiB)
    out = {}
    for name, (_claimed, _driver, args) in FORMATS.items():
        path = str(d / (name + ".img"))
        images.qemu_img("convert", "-f", "raw", *args, raw, path)
        out[name] = path
    return out


@pytest.fixture(scope="module")
def glance(module_glance_factory, tmp_path_factory):
    return module_glance_factory(
        plugins=helpers.OUR_PLUGINS,
        import_options=helpers.import_options(
            str(tmp_path_factory.mktemp("locks"))))


class StagingWatch(threading.Thread):
    """Peak allocated bytes of the staging directory, and every name."""

    def __init__(self, directory):
        super().__init__(daemon=True)
        self.directory = directory
        self.peak = 0
        self.names = set()
        self.regular = set()
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            total = 0
            try:
                entries = list(os.scandir(self.directory))
            except OSError:
                entries = []
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                self.names.add(entry.name)
                if entry.is_file(follow_symlinks=False):
                    self.regular.add(entry.name)
                    total += st.st_blocks * 512
            self.peak = max(self.peak, total)
            time.sleep(0.02)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_streamed_to_raw(glance, sources, tmp_path, name):
    claimed, driver, _args = FORMATS[name]
    source = sources[name]
    watch = StagingWatch(glance.staging_dir)
    watch.start()
    try:
        image_id = glance.import_file(source, claimed)
        image = glance.wait_import(image_id)
    finally:
        watch.done.set()
        watch.join()
    assert image["status"] == "active", (image, glance.log_tail())
    assert image["glance_ext_convert_path"] == "stream", image
    assert image["glance_ext_convert_path_reason"] == \
        "one store, raw target"
    assert image["disk_format"] == "raw"
    assert image["size"] == image["virtual_size"] == SIZE_MIB * MiB
    helpers.assert_stored_equals(glance, image, source, driver,
                                 str(tmp_path))
    # Staging held the upload and the FIFO, never a raw copy.
    assert watch.regular <= {image_id}, watch.names
    assert image_id + ".glance_ext_convert.raw.stream" in watch.names
    assert watch.peak <= os.path.getsize(source) + 64 * MiB, watch.peak
    assert not helpers.ours_in_staging(glance, image_id)


def test_two_stores_take_the_file_path(module_glance_factory,
                                       tmp_path_factory, sources, tmp_path):
    glance = module_glance_factory(
        plugins=helpers.OUR_PLUGINS, stores=["fs", "fast"],
        import_options=helpers.import_options(
            str(tmp_path_factory.mktemp("locks")),
            store_formats="fs:raw,fast:raw"))
    source = sources["qcow2"]
    image = glance.wait_import(glance.import_file(source, "qcow2",
                                                  stores=["fs", "fast"]))
    assert image["status"] == "active", (image, glance.log_tail())
    assert set(image["stores"].split(",")) == {"fs", "fast"}
    assert image["glance_ext_convert_path"] == "file"
    assert "2 stores" in image["glance_ext_convert_path_reason"]
    for store in ("fs", "fast"):
        stored = os.path.join(
            glance.state_dir, "images" if store == "fs" else
            "images-" + store, image["id"])
        assert subprocess.run(
            ["qemu-img", "compare", "-f", "qcow2", "-F", "raw", source,
             stored]).returncode == 0, store
    assert not helpers.ours_in_staging(glance, image["id"])


def _admin(glance):
    """copy-image is an admin action under Glance 33's default policy."""
    user, project, _roles = glance.token.split(":")
    return "%s:%s:admin,member,reader" % (user, project)


def _copy_image(glance, image_id, store):
    return glance.glance("image-import", image_id, "--import-method",
                         "copy-image", "--stores", store, check=False,
                         token=_admin(glance))


def _copy_glance(factory, tmp_path_factory, **extra):
    opts = helpers.import_options(str(tmp_path_factory.mktemp("locks")),
                                  store_formats="fs:qcow2,fast:raw",
                                  **extra)
    return factory(plugins=helpers.OUR_PLUGINS, stores=["fs", "fast"],
                   import_options=opts)


def test_copy_image_to_a_raw_store_is_refused(
        module_glance_factory, tmp_path_factory, sources):
    glance = _copy_glance(module_glance_factory, tmp_path_factory)
    image = glance.wait_import(glance.import_file(sources["qcow2"], "qcow2",
                                                  stores=["fs"]))
    assert image["status"] == "active" and image["disk_format"] == "qcow2"
    proc = _copy_image(glance, image["id"], "fast")
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "409" in text, text
    assert "copy-image would store image %s as qcow2, but store fast " \
        "wants raw" % image["id"] in text, text
    assert "allow_copy_image_format_change" in text, text
    # Straight from the API: Glance's JSON error shape.
    req = urllib.request.Request(
        glance.url + "/v2/images/%s/import" % image["id"],
        data=json.dumps({"method": {"name": "copy-image"},
                         "stores": ["fast"]}).encode(), method="POST")
    req.add_header("X-Auth-Token", _admin(glance))
    req.add_header("Content-Type", "application/json")
    req.add_header("Accept", "application/json")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 409
    body = json.loads(err.value.read().decode())
    assert body["code"] == "409 Conflict" and body["title"] == "Conflict"
    assert "store fast wants raw" in body["message"]
    time.sleep(1)
    assert glance.image(image["id"])["stores"] == "fs"


def test_copy_image_allowed_by_the_option(
        module_glance_factory, tmp_path_factory, sources):
    glance = _copy_glance(module_glance_factory, tmp_path_factory,
                          allow_copy_image_format_change="true")
    image = glance.wait_import(glance.import_file(sources["qcow2"], "qcow2",
                                                  stores=["fs"]))
    assert image["status"] == "active"
    proc = _copy_image(glance, image["id"], "fast")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stores = glance.image(image["id"]).get("stores", "")
        if set(stores.split(",")) == {"fs", "fast"}:
            break
        time.sleep(0.5)
    assert set(stores.split(",")) == {"fs", "fast"}, glance.log_tail()
