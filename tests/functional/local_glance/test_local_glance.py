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

"""Functional: `glance-ext local-glance` runs a real glance-api.

Proves the foundation every other functional test stands on: real
imports through the real `glance` CLI (glance-direct and web-download)
reach `active` with the right format and sizes; PostgreSQL carries four
concurrent imports; `down` leaves no process, pid or lock behind; and the
failure modes an operator meets give clear errors.
"""

import concurrent.futures
import os
import socket
import subprocess

import pytest

from glance_ext.local_glance import client
from glance_ext.testing import crash


def _qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img"] + list(args), check=True,
                   stdout=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A qcow2 with data in it and a raw image, built with qemu-img."""
    base = tmp_path_factory.mktemp("images")
    raw = base / "disk.raw"
    with open(raw, "wb") as fh:
        fh.truncate(32 * 1024 * 1024)
        fh.seek(1024 * 1024)
        fh.write(os.urandom(256 * 1024))
    qcow2 = base / "disk.qcow2"
    _qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2))
    return {"raw": str(raw), "qcow2": str(qcow2)}


def test_glance_direct_and_web_download_reach_active(
        local_glance_factory, http_server, images):
    glance = local_glance_factory(web_download_port=http_server.port)
    for fmt in ("qcow2", "raw"):
        image_id = glance.import_file(images[fmt], fmt)
        image = glance.wait_import(image_id)
        assert image["status"] == "active", image
        assert image["disk_format"] == fmt
        assert image["size"] == os.path.getsize(images[fmt])
        assert image["virtual_size"] == 32 * 1024 * 1024
    # web-download from the loopback server the test started.
    os.link(images["qcow2"], os.path.join(http_server.directory, "w.qcow2"))
    image_id = glance.web_download(http_server.url_for("w.qcow2"), "qcow2")
    image = glance.wait_import(image_id)
    assert image["status"] == "active", image
    assert image["size"] == os.path.getsize(images["qcow2"])
    tasks = glance.tasks(image_id)
    assert tasks and tasks[0]["Status"] == "success", tasks
    assert glance.staged_files() == []


def test_postgresql_four_concurrent_imports_and_clean_down(
        local_glance_factory, images, tmp_path):
    glance = local_glance_factory(db="postgresql", workers=2)
    pg_dir = glance.info["postgres"]["data_dir"]
    assert os.path.isdir(pg_dir)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(
            lambda i: glance.import_file(images["qcow2"], "qcow2",
                                         name="concurrent-%d" % i),
            range(4)))
    for image_id in ids:
        assert glance.wait_import(image_id)["status"] == "active"

    glance.down()
    local_glance_factory.started.remove(glance)
    assert crash.live_members(glance.pid) == []
    assert not os.path.exists(pg_dir)
    for name in ("state.json", "env", "locks"):
        assert not os.path.exists(os.path.join(glance.state_dir, name))
    status = client.run([client.GLANCE_EXT, "local-glance", "status",
                         "--state-dir", glance.state_dir], check=False)
    assert status.returncode == 1 and "not running" in status.stdout


def test_taken_port_is_a_clear_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        proc = client.run([client.GLANCE_EXT, "local-glance", "up",
                           "--state-dir", str(tmp_path / "s"),
                           "--port", str(port)], check=False)
    assert proc.returncode == 1
    assert "port %d on 127.0.0.1 is already in use" % port in proc.stderr


def test_unknown_plugin_is_refused_before_start(tmp_path):
    proc = client.run([client.GLANCE_EXT, "local-glance", "up",
                       "--state-dir", str(tmp_path / "s"),
                       "--plugins", "glance_ext_no_such_plugin"],
                      check=False)
    assert proc.returncode == 1
    assert "unknown import plugin 'glance_ext_no_such_plugin'" in proc.stderr


def test_glance_start_failure_shows_log_tail(tmp_path):
    # A backend type glance_store does not know makes Glance's app fail.
    proc = client.run([client.GLANCE_EXT, "local-glance", "up",
                       "--state-dir", str(tmp_path / "s"),
                       "--api-option", "DEFAULT.enabled_backends=fs:nope"],
                      check=False)
    assert proc.returncode == 1
    assert "Last lines of" in proc.stderr, proc.stderr
    assert not os.path.exists(tmp_path / "s" / "state.json")
