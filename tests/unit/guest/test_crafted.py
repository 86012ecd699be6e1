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

"""Hostile images: the engine stays inside the guest, inside its budget,
and reports what it could not read instead of failing or guessing."""

import os

import pytest

from glance_ext import testing
from glance_ext.guest import inspect_guest
from glance_ext.guest import options
from glance_ext.testing.guest import crafted


@pytest.fixture(autouse=True)
def _tools():
    import shutil
    if shutil.which("mke2fs") is None:
        testing.needs("mke2fs (e2fsprogs) is not installed")


def test_symlink_loop_is_reported_not_followed():
    report = inspect_guest(crafted.symlink_loop(), "raw")
    assert report.ok
    assert report.os["os_type"] == "linux"
    assert report.os["distro"] is None          # never guessed
    assert any("symbolic links" in n and "/etc/os-release" in n
               for n in report["notes"])
    # /etc/ssh -> ssh: whether host keys exist cannot be known.
    keys = report.check("ssh-host-keys")
    assert keys["status"] == "unknown"
    assert any("symbolic links" in e for e in keys["evidence"])


def test_links_climbing_out_stay_in_the_guest():
    assert not os.path.exists("/etc/guest-release")   # host has none
    report = inspect_guest(crafted.escaping_links(), "raw")
    assert report.ok
    # Both ../../.. and /../.. clamp at the GUEST root.
    assert report.os["distro"] == "fedora"
    assert report.os["version"] == "37"
    # /proc/self/root/etc/machine-id does not exist in the guest: absent,
    # whatever the host has there.
    assert report.check("machine-id")["evidence"] == [
        "/etc/machine-id: absent"]


def test_huge_directory_is_bounded():
    report = inspect_guest(crafted.huge_directory(), "raw",
                           options.standalone_conf(max_dir_entries=1000))
    assert report.ok
    assert report.os["distro"] == "debian"
    assert "/etc/ssh has more than 1000 entries; the rest were not read" \
        in report["notes"]
    assert report["bytes_read"] < 4 * 1024 * 1024


def test_read_budget_is_enforced():
    report = inspect_guest(crafted.huge_directory(), "raw",
                           options.standalone_conf(read_budget_mb=1))
    assert not report.ok
    assert "read budget of 1024 KiB" in report["error"]
    assert report["bytes_read"] <= 1024 * 1024


@pytest.mark.parametrize("kind", ["block-size", "inodes", "groups"])
def test_corrupt_superblock(kind):
    report = inspect_guest(crafted.corrupt_superblock(kind), "raw")
    # Either libfsext refuses the volume (reported on the partition, no OS
    # claimed) or it reads what is intact; it never crashes or hangs.
    assert report["error"] is None
    part = report["partitions"][0]
    assert part["fs_type"] == "ext4"
    if part["readable"]:
        assert report.os["distro"] == "debian"
    else:
        assert part["error"].startswith("cannot open the ext4 filesystem")
        assert report.os["os_type"] == "unknown"
    if kind == "block-size":
        assert not part["readable"]


def test_garbage_disk_is_unknown(tmp_path):
    path = tmp_path / "noise.raw"
    path.write_bytes(os.urandom(4 * 1024 * 1024))
    report = inspect_guest(str(path), "raw")
    assert report.ok
    assert report["partition_table"] == "none"
    assert report.os["os_type"] == "unknown"
    assert report["partitions"][0]["error"] == "no known filesystem signature"


@pytest.mark.parametrize("fs_type", ["ext2", "ext3"])
def test_older_ext_generations(tmp_path, fs_type):
    from glance_ext.testing.guest import disks
    from glance_ext.testing.guest import trees
    root = tmp_path / "root"
    trees.build(str(root), trees.TreeSpec("debian", "12", fstab=(
        "LABEL=rootfs / %s defaults 0 1\n" % fs_type)), None)
    img = tmp_path / "disk.raw"
    with open(img, "wb") as fh:
        fh.truncate(40 * 1024 * 1024)
    disks._run("mke2fs", "-q", "-F", "-t", fs_type, "-L", "rootfs", "-d",
               str(root), str(img))
    report = inspect_guest(str(img), "raw")
    assert report["partitions"][0]["fs_type"] == fs_type
    assert report.os["osinfo_id"] == "debian12"


def test_btrfs_is_identified_not_guessed(tmp_path):
    import shutil
    if shutil.which("mkfs.btrfs") is None:
        testing.needs("mkfs.btrfs (btrfs-progs) is not installed")
    from glance_ext.testing.guest import disks
    from glance_ext.testing.guest import trees
    root = tmp_path / "root"
    trees.build(str(root), trees.TreeSpec("fedora", "37"), None)
    img = tmp_path / "disk.raw"
    with open(img, "wb") as fh:
        fh.truncate(128 * 1024 * 1024)
    disks._run("mkfs.btrfs", "-q", "-L", "fedora", "-r", str(root),
               str(img))
    report = inspect_guest(str(img), "raw")
    part = report["partitions"][0]
    assert part["fs_type"] == "btrfs" and part["fs_label"] == "fedora"
    assert not part["readable"]
    assert "btrfs is identified but not readable" in part["error"]
    assert report.os["os_type"] == "unknown"      # never guessed
    assert report.checks == []


@pytest.fixture(scope="module")
def blocks_read(guest_image):
    """The 64 KiB blocks the engine reads on the clean debian-mbr image:
    exactly the metadata and files a corruption can hurt."""
    from glance_ext.guest import disk as disk_mod
    from glance_ext.guest import engine
    path, _fmt = guest_image("debian-mbr")
    seen = set()
    original = disk_mod.BoundedDisk._block

    def record(self, index):
        seen.add(index)
        return original(self, index)
    disk_mod.BoundedDisk._block = record
    try:
        report = engine.inspect(path, "raw", budget_bytes=16 << 20)
    finally:
        disk_mod.BoundedDisk._block = original
    assert report["os"]["distro"] == "debian"
    return path, sorted(seen - {0})           # keep the partition table


@pytest.mark.parametrize("seed", range(16))
def test_random_corruption_of_what_is_read(blocks_read, tmp_path, seed):
    """Overwrite random bytes inside the blocks the engine reads
    (superblock, group descriptors, inode table, directories, files): the
    engine always answers with a report within its limits; what it could
    not read is an error on the partition or a note, never a crash."""
    import random
    path, blocks = blocks_read
    rng = random.Random(seed)
    data = bytearray(open(path, "rb").read())
    for _ in range(24):
        block = rng.choice(blocks)
        pos = block * 65536 + rng.randrange(0, 65536 - 16)
        data[pos:pos + 16] = rng.randbytes(16)
    bad = tmp_path / "bad.raw"
    bad.write_bytes(bytes(data))
    report = inspect_guest(str(bad), "raw", options.standalone_conf(worker_timeout_seconds=30))
    error = report["error"] or ""
    assert "did not finish" not in error and "worker failed" not in error
    assert "killed by signal" not in error
    assert report["partitions"] or error
    # A check that passes saw no read failure (those make it "unknown").
    for check in report.checks:
        if check["status"] == "pass":
            assert not any(e.startswith("could not read")
                           for e in check["evidence"])


def test_unreadable_directory_makes_a_check_unknown(guest_image, tmp_path):
    """/etc/ufw's directory block is destroyed: the firewall check cannot
    pass on the absence of evidence it failed to read."""
    import pyfsext
    from glance_ext.guest import disk as disk_mod
    path, _fmt = guest_image("debian-mbr")
    part_start = 1024 * 1024
    disk = disk_mod.open_disk(path, "raw", budget_bytes=64 << 20)
    try:
        vol = pyfsext.volume()
        vol.open_file_object(disk_mod.PartitionView(disk, part_start,
                                                    40 << 20))
        offset, size, _flags = vol.get_file_entry_by_path(
            "/etc/ufw").get_extent(0)
    finally:
        disk.close()
    data = bytearray(open(path, "rb").read())
    data[part_start + offset:part_start + offset + size] = b"\xff" * size
    bad = tmp_path / "bad.raw"
    bad.write_bytes(bytes(data))
    report = inspect_guest(str(bad), "raw")
    assert report.os["distro"] == "debian"
    firewall = report.check("firewall")
    assert firewall["status"] == "unknown"
    assert any(e.startswith("could not read: lookup of /etc/ufw/ufw.conf")
               for e in firewall["evidence"])
