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

"""Partition-table parsing on tables written by sfdisk and on crafted ones
(EBR loops, absurd GPT entry counts, bad header sizes)."""

import struct
import subprocess
import shutil
import uuid
import zlib

import pytest

from glance_ext import testing
from glance_ext.guest import partitions

MiB = 1024 * 1024


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        self.size = len(data)

    def pread(self, offset, length):
        return bytes(self.data[offset:offset + length])


def _sfdisk(tmp_path, script: str, size: int = 64 * MiB) -> _Bytes:
    if shutil.which("sfdisk") is None:
        testing.needs("sfdisk (fdisk) is not installed")
    path = tmp_path / "disk.raw"
    with open(path, "wb") as fh:
        fh.truncate(size)
    subprocess.run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel",
                    str(path)], input=script.encode(), check=True,
                   capture_output=True)
    return _Bytes(path.read_bytes())


def test_mbr_with_logical_partitions(tmp_path):
    disk = _sfdisk(tmp_path, "label: dos\nunit: sectors\n"
                   "start=2048, size=20480, type=83, bootable\n"
                   "start=22528, size=100000, type=5\n"
                   "start=24576, size=20480, type=82\n"
                   "start=47104, size=20480, type=8e\n")
    table = partitions.read_table(disk)
    assert table.scheme == "mbr"
    got = [(p.number, p.start // 512, p.size // 512, p.type_id)
           for p in table.partitions]
    assert got == [(1, 2048, 20480, "0x83"), (2, 22528, 100000, "0x05"),
                   (5, 24576, 20480, "0x82"), (6, 47104, 20480, "0x8e")]
    assert table.partitions[0].bootable
    assert table.partitions[3].is_lvm
    assert not table.warnings


def test_gpt(tmp_path):
    part_uuid = str(uuid.uuid4())
    disk = _sfdisk(tmp_path, "label: gpt\nunit: sectors\n"
                   "start=2048, size=2048, type=21686148-6449-6E6F-744E-"
                   "656564454649\n"
                   "start=4096, size=32768, type=C12A7328-F81F-11D2-BA4B-"
                   "00A0C93EC93B, name=\"EFI System\", uuid=%s\n" % part_uuid)
    table = partitions.read_table(disk)
    assert table.scheme == "gpt"
    assert [p.type_name for p in table.partitions] == [
        "BIOS boot", "EFI System"]
    esp = table.partitions[1]
    assert esp.is_esp and esp.part_uuid == part_uuid
    assert esp.name == "EFI System"
    assert esp.start == 4096 * 512 and esp.size == 32768 * 512
    assert not table.warnings


def test_no_table():
    assert partitions.read_table(_Bytes(b"\0" * 4096)).scheme == "none"


def test_fat_boot_sector_is_not_an_mbr():
    sector = bytearray(512)
    sector[0:3] = b"\xeb\x3c\x90"
    sector[446:462] = b"\x29" * 16          # garbage where entries would be
    sector[510:512] = b"\x55\xaa"
    assert partitions.read_table(_Bytes(bytes(sector))).scheme == "none"


def _mbr(entries) -> bytearray:
    disk = bytearray(4 * MiB)
    for i, (ptype, lba, count) in enumerate(entries):
        off = 446 + 16 * i
        disk[off + 4] = ptype
        disk[off + 8:off + 16] = struct.pack("<II", lba, count)
    disk[510:512] = b"\x55\xaa"
    return disk


def _ebr(disk, lba, next_rel):
    off = lba * 512
    disk[off + 446 + 4] = 0x83
    disk[off + 446 + 8:off + 446 + 16] = struct.pack("<II", 10, 50)
    if next_rel:
        disk[off + 462 + 4] = 0x05
        disk[off + 462 + 8:off + 462 + 16] = struct.pack("<II", next_rel,
                                                         100)
    disk[off + 510:off + 512] = b"\x55\xaa"


def test_ebr_chain():
    disk = _mbr([(0x05, 100, 4000)])
    _ebr(disk, 100, 200)       # -> EBR at 100 + 200
    _ebr(disk, 300, 0)         # end of chain
    table = partitions.read_table(_Bytes(bytes(disk)))
    assert [(p.number, p.start // 512) for p in table.partitions] == [
        (1, 100), (5, 110), (6, 310)]
    assert not table.warnings


def test_ebr_chain_loop_is_detected():
    disk = _mbr([(0x05, 100, 4000)])
    _ebr(disk, 100, 200)
    _ebr(disk, 300, 200)       # "next" is itself: a loop
    table = partitions.read_table(_Bytes(bytes(disk)))
    assert [p.number for p in table.partitions] == [1, 5, 6]
    assert any("loops" in w for w in table.warnings)


def _gpt(count: int, entry_size: int = 128, hdr_size: int = 92) -> bytes:
    disk = _mbr([(0xEE, 1, 8191)])
    hdr = bytearray(512)
    hdr[0:8] = b"EFI PART"
    hdr[8:12] = b"\0\0\1\0"
    hdr[12:16] = struct.pack("<I", hdr_size)
    hdr[72:88] = struct.pack("<QII", 2, count, entry_size)
    crc = zlib.crc32(bytes(hdr[:min(hdr_size, 512)]))
    hdr[16:20] = struct.pack("<I", crc)
    disk[512:1024] = hdr
    ent = 1024
    disk[ent:ent + 16] = uuid.UUID(partitions.GPT_ESP).bytes_le
    disk[ent + 16:ent + 32] = uuid.uuid4().bytes_le
    disk[ent + 32:ent + 48] = struct.pack("<QQ", 2048, 4095)
    return bytes(disk)


def test_gpt_huge_entry_count_is_capped():
    table = partitions.read_table(_Bytes(_gpt(10 ** 7)))
    assert len(table.partitions) == 1
    assert any("claims 10000000 entries" in w for w in table.warnings)


def test_gpt_bad_sizes_are_refused():
    with pytest.raises(partitions.PartitionTableError):
        partitions.read_table(_Bytes(_gpt(128, entry_size=7)))
    with pytest.raises(partitions.PartitionTableError):
        partitions.read_table(_Bytes(_gpt(128, hdr_size=4000)))


def test_gpt_checksum_mismatch_is_a_warning():
    disk = bytearray(_gpt(128))
    disk[512 + 40] ^= 0xFF
    table = partitions.read_table(_Bytes(bytes(disk)))
    assert "GPT header checksum mismatch" in table.warnings


def test_lvm_writer_is_accepted_by_lvm2(tmp_path):
    """The PV our builder writes is what lvm2's own pvck reads: label,
    header and metadata checksums included."""
    if shutil.which("pvck") is None:
        testing.needs("pvck (lvm2) is not installed")
    from glance_ext.testing.guest import lvm
    fs = tmp_path / "fs.img"
    fs.write_bytes(b"\1" * 4096)
    pv = tmp_path / "pv.img"
    lvm.build_pv(str(pv), 16 * MiB, "vgtest", [("data", str(fs))])
    out = subprocess.run(["pvck", "--dump", "headers", str(pv)],
                         capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert "label_header.type LVM2 001" in text
    assert "vgname vgtest seqno 1" in text
    assert "CHECK" not in text and "bad" not in text.lower()
