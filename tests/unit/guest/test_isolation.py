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

"""qemu-nbd opens the image and nothing else; the NBD client refuses
reads outside the disk; the engine's read path is clipped per partition."""

import os

import pytest

import glance_ext.guest
from glance_ext.guest import disk as disk_mod
from glance_ext.guest import nbd_client


def _open_files(pid: int):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("/") and not target.startswith("/dev/"):
            out.append(target)
    return out


@pytest.mark.parametrize("container", ["qcow2", "vmdk-sparse", "vhdx"])
def test_qemu_nbd_opens_only_the_image(guest_image, container):
    path, fmt = guest_image("ubuntu-gpt", container)
    disk = disk_mod.open_disk(path, fmt, budget_bytes=1 << 20)
    try:
        proc = disk._src._proc
        files = _open_files(proc.pid)
        assert files == [os.path.realpath(path)]
    finally:
        disk.close()
    assert proc.poll() is not None            # stopped with the disk


def test_nbd_reads_outside_the_disk_are_refused(guest_image):
    path, fmt = guest_image("ubuntu-gpt", "qcow2")
    disk = disk_mod.open_disk(path, fmt, budget_bytes=1 << 20)
    try:
        client = disk._src._client
        with pytest.raises(nbd_client.NbdError, match="outside"):
            client.pread(client.size - 10, 20)
    finally:
        disk.close()


def test_partition_view_is_clipped(guest_image):
    path, fmt = guest_image("ubuntu-gpt")
    disk = disk_mod.open_disk(path, fmt, budget_bytes=8 << 20)
    try:
        view = disk_mod.PartitionView(disk, 1 << 20, 4096)
        assert view.pread(4000, 500) == disk.pread((1 << 20) + 4000, 96)
        assert view.pread(4096, 10) == b""
        view.seek(0, os.SEEK_END)
        assert view.read(100) == b""
        assert view.get_size() == 4096
    finally:
        disk.close()


def test_budget_counts_blocks_once(guest_image):
    path, fmt = guest_image("ubuntu-gpt")
    disk = disk_mod.open_disk(path, fmt, budget_bytes=1 << 20)
    try:
        disk.pread(0, 10)
        disk.pread(100, 10)                   # same 64 KiB block: cached
        assert disk.bytes_read == disk_mod.BLOCK and disk.reads == 1
        with pytest.raises(disk_mod.ReadBudgetExceeded):
            disk.pread(0, 2 << 20)
        assert disk.exhausted
    finally:
        disk.close()


def test_public_format_list_matches_reader():
    assert glance_ext.guest.SUPPORTED_FORMATS == disk_mod.SUPPORTED_FORMATS


def test_windows_in_a_container(inspected):
    raw = inspected("win2k22-gpt").to_dict()
    vhdx = inspected("win2k22-gpt", "vhdx").to_dict()
    assert vhdx["reader"] == "qemu-nbd"
    for key in ("os", "architecture", "firmware", "partitions", "checks"):
        assert vhdx[key] == raw[key], key
