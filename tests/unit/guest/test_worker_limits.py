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

"""The worker's limits: a wall-clock kill takes qemu-nbd with it, memory
and CPU limits end the worker, and requests that are wrong raise."""

import os
import tempfile
import time

import pytest

from glance_ext.guest import GuestInspectionError
from glance_ext.guest import inspect_guest
from glance_ext.guest import options
from glance_ext.guest import worker


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    with open("/proc/%d/stat" % pid) as fh:
        return fh.read().split(")")[-1].split()[0] != "Z"


def test_timeout_kills_worker_and_its_children(tmp_path, guest_image):
    """A qemu-nbd that hangs: the worker waits for it, the parent's
    wall-clock limit kills the whole session, the hung child included."""
    path, fmt = guest_image("ubuntu-gpt", "qcow2")
    pidfile = tmp_path / "pid"
    fake = tmp_path / "hanging-qemu-nbd"
    fake.write_text("#!/bin/sh\necho $$ > %s\nexec sleep 300\n" % pidfile)
    fake.chmod(0o755)
    start = time.monotonic()
    conf = options.standalone_conf(qemu_nbd=str(fake),
                                   worker_timeout_seconds=3)
    report = inspect_guest(path, fmt, conf)
    assert time.monotonic() - start < 20
    assert not report.ok
    assert "did not finish within 3" in report["error"]
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the hung qemu-nbd survived the worker"


def test_limits_reach_worker_and_qemu_nbd(tmp_path, guest_image):
    """qemu-nbd runs under the worker's CPU and address-space limits (it
    inherits them from the worker, which prlimit set up): a stand-in
    qemu-nbd records its own /proc limits, then fails."""
    path, fmt = guest_image("ubuntu-gpt", "vhdx")
    limits = tmp_path / "limits"
    fake = tmp_path / "recording-qemu-nbd"
    fake.write_text("#!/bin/sh\ncat /proc/$$/limits > %s\n"
                    "echo 'cannot open' >&2\nexit 1\n" % limits)
    fake.chmod(0o755)
    conf = options.standalone_conf(qemu_nbd=str(fake), worker_cpu_seconds=7,
                                   worker_memory_mb=300)
    report = inspect_guest(path, fmt, conf)
    assert "qemu-nbd could not open the image as vhdx: cannot open" \
        in report["error"]
    text = limits.read_text()
    cpu = [ln for ln in text.splitlines() if ln.startswith("Max cpu time")]
    mem = [ln for ln in text.splitlines()
           if ln.startswith("Max address space")]
    assert cpu[0].split()[3:5] == ["7", "7"]
    assert mem[0].split()[3:5] == [str(300 * 1024 * 1024)] * 2


def test_worker_killed_by_a_limit_is_reported(guest_image):
    """An address-space limit too small for qemu-nbd's start-up: the
    engine reports the failure, it does not hang or guess."""
    path, fmt = guest_image("ubuntu-gpt", "qcow2")
    report = worker.run(path, fmt, worker.WorkerSettings(memory_mb=40))
    assert report["error"]
    assert report["os"] == {"os_type": "unknown"}


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(GuestInspectionError, match="not a readable file"):
        inspect_guest(str(tmp_path / "nope"), "raw")
    (tmp_path / "x").write_bytes(b"\0" * 512)
    with pytest.raises(GuestInspectionError, match="cannot be inspected"):
        inspect_guest(str(tmp_path / "x"), "ploop")


def test_backing_file_is_refused(tmp_path):
    from glance_ext.qemu import runner
    q = runner.QemuImg()
    base = tmp_path / "base.qcow2"
    top = tmp_path / "top.qcow2"
    q.run(["create", "-f", "qcow2", str(base), "16M"])
    q.run(["create", "-f", "qcow2", "-b", str(base), "-F", "qcow2",
           str(top)])
    report = inspect_guest(str(top), "qcow2")
    assert not report.ok
    assert "backing file" in report["error"]


def test_wrong_format_is_reported(guest_image):
    path, _fmt = guest_image("debian-mbr")
    report = inspect_guest(path, "qcow2")
    assert not report.ok
    assert "check its disk_format" in report["error"]


def test_missing_qemu_nbd_is_named(guest_image):
    path, fmt = guest_image("ubuntu-gpt", "qcow2")
    report = inspect_guest(path, fmt, options.standalone_conf(qemu_nbd="/nonexistent/qemu-nbd"))
    assert not report.ok
    assert "cannot run /nonexistent/qemu-nbd" in report["error"]
    assert "install qemu-utils" in report["error"]


def test_a_killed_worker_leaves_no_temporary_directory(tmp_path,
                                                       guest_image,
                                                       monkeypatch):
    """A worker killed by the timeout never runs its own clean-up: the
    directory it made its temporary files in (qemu-nbd's socket) is the
    parent's, and the parent removes it."""
    path, fmt = guest_image("ubuntu-gpt", "qcow2")
    fake = tmp_path / "hanging-qemu-nbd"
    seen = tmp_path / "tmpdir"
    fake.write_text("#!/bin/sh\necho \"$TMPDIR\" > %s\nexec sleep 300\n"
                    % seen)
    fake.chmod(0o755)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    conf = options.standalone_conf(qemu_nbd=str(fake),
                                   worker_timeout_seconds=3)
    report = inspect_guest(path, fmt, conf)
    assert "did not finish within 3" in report["error"]
    worker_tmp = seen.read_text().strip()
    assert os.path.dirname(worker_tmp) == str(tmp_path / "tmp")
    assert not os.path.exists(worker_tmp)
    assert os.listdir(tmp_path / "tmp") == []
