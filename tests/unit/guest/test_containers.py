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

"""Every container format reads correctly: byte-identical to the raw disk.

The disk is read through qemu-nbd and the engine's own NBD client, and the
bytes are compared with the raw image at the places the engine reads
(partition table, filesystem superblocks, deep inside the root filesystem)
— then the whole inspection must give the same answer as on raw.
"""

import hashlib

import pytest

from glance_ext.guest import disk as disk_mod
from glance_ext.testing.guest import disks

CONTAINERS = [c for c in disks.CONTAINERS if c != "raw"]
# (offset, length) pairs: MBR+GPT, ESP boot sector, root superblock, and
# 1 MiB from the middle of the root filesystem's data.
OFFSETS = [(0, 34 * 512), (2 * disks.MiB, 4096), (18 * disks.MiB, 8192),
           (19 * disks.MiB + 12345, disks.MiB)]


@pytest.fixture(scope="module")
def raw_bytes(guest_image):
    path, _fmt = guest_image("ubuntu-gpt")
    out = []
    with open(path, "rb") as fh:
        for offset, length in OFFSETS:
            fh.seek(offset)
            out.append(hashlib.sha256(fh.read(length)).hexdigest())
    return out


@pytest.mark.parametrize("container", CONTAINERS)
def test_container_bytes_match_raw(guest_image, raw_bytes, container):
    path, fmt = guest_image("ubuntu-gpt", container)
    disk = disk_mod.open_disk(path, fmt, budget_bytes=64 * disks.MiB)
    try:
        got = [hashlib.sha256(disk.pread(o, n)).hexdigest()
               for o, n in OFFSETS]
        # VHD rounds the disk up to its CHS geometry; the others keep it.
        if fmt == "vhd":
            assert 61865984 <= disk.size < 61865984 + 2 * disks.MiB
        else:
            assert disk.size == 61865984
    finally:
        disk.close()
    assert got == raw_bytes


@pytest.mark.parametrize("container", CONTAINERS)
def test_container_inspects_like_raw(inspected, container):
    raw = inspected("ubuntu-gpt").to_dict()
    got = inspected("ubuntu-gpt", container).to_dict()
    assert got["error"] is None
    assert got["reader"] == "qemu-nbd"
    for key in ("os", "architecture", "firmware", "partitions", "root",
                "root_is_last", "checks", "bytes_read"):
        assert got[key] == raw[key], key


def test_compressed_variants_are_really_compressed(guest_image):
    import os
    plain, _ = guest_image("ubuntu-gpt", "qcow2")
    for variant in ("qcow2-compressed", "qcow2-zstd"):
        path, _ = guest_image("ubuntu-gpt", variant)
        # Compressed clusters make the file much smaller than the plain
        # qcow2 of the same disk.
        assert os.path.getsize(path) < os.path.getsize(plain) * 0.6, variant


def test_qemu_img_reports_the_variants(guest_image):
    from glance_ext.qemu import runner
    q = runner.QemuImg()
    info = q.info(guest_image("ubuntu-gpt", "qcow2-zstd")[0], "qcow2")
    assert info["format-specific"]["data"]["compression-type"] == "zstd"
    info = q.info(guest_image("ubuntu-gpt", "qcow2-extended-l2")[0], "qcow2")
    assert info["format-specific"]["data"]["extended-l2"] is True
    info = q.info(guest_image("ubuntu-gpt", "vmdk-stream")[0], "vmdk")
    assert info["format-specific"]["data"]["create-type"] == \
        "streamOptimized"


MATRIX = [(name, container) for name in sorted(disks.SPECS)
          for container in CONTAINERS if name != "ubuntu-gpt"]


@pytest.mark.parametrize("name,container", MATRIX)
def test_every_layout_in_every_container(inspected, name, container):
    """Each distribution/layout fixture answers the same in every
    container format as in raw (identity, partitions, root, checks)."""
    raw = inspected(name).to_dict()
    got = inspected(name, container).to_dict()
    assert got["error"] is None, got["error"]
    if container == "vhd":
        # VHD rounds the disk up to its CHS geometry: a filesystem on the
        # whole disk (no table) sees the larger size.
        for parts in (raw["partitions"], got["partitions"]):
            for p in parts:
                if p["number"] == 0:
                    p.pop("size")
                    p.pop("end")
    for key in ("os", "architecture", "firmware", "root", "root_is_last",
                "partitions", "checks"):
        assert got[key] == raw[key], key
