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

"""MBR (with extended/logical partitions) and GPT partition tables.

Why hand-written rather than libvsmbr/libvsgpt: the tables are a few
fixed-layout structures, and the engine must bound every walk itself (a
crafted extended-partition chain can loop, a GPT header can claim millions
of entries) and report exactly what it skipped. Positions are reported in
bytes from the start of the virtual disk.
"""

import dataclasses
import struct
import uuid
import zlib
from typing import List, Optional, Tuple
from glance_ext.exceptions import PartitionTableError

SECTOR = 512
MAX_LOGICAL = 64
MAX_GPT_ENTRIES = 256

GPT_ESP = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
GPT_BIOS_BOOT = "21686148-6449-6e6f-744e-656564454649"
GPT_TYPES = {
    GPT_ESP: "EFI System",
    GPT_BIOS_BOOT: "BIOS boot",
    "0fc63daf-8483-4772-8e79-3d69d8477de4": "Linux filesystem",
    "4f68bce3-e8cd-4db1-96e7-fbcaf984b709": "Linux root (x86-64)",
    "b921b045-1df0-41c3-af44-4c6f280d3fae": "Linux root (ARM-64)",
    "bc13c2ff-59e6-4262-a352-b275fd6f7172": "Linux extended boot",
    "e6d6d379-f507-44c2-a23c-238f2a3df928": "Linux LVM",
    "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "Linux swap",
    "a19d880f-05fc-4d3b-a006-743f0f84911e": "Linux RAID",
    "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "Microsoft basic data",
    "e3c9e316-0b5c-4db8-817d-f92df00215ae": "Microsoft reserved",
    "de94bba4-06d1-4d40-a16a-bfd50179d6ac": "Windows recovery",
}
MBR_TYPES = {
    0x01: "FAT12", 0x04: "FAT16", 0x06: "FAT16", 0x07: "NTFS/exFAT",
    0x0B: "FAT32", 0x0C: "FAT32 (LBA)", 0x0E: "FAT16 (LBA)",
    0x05: "Extended", 0x0F: "Extended (LBA)", 0x85: "Linux extended",
    0x27: "Windows recovery", 0x82: "Linux swap", 0x83: "Linux",
    0x8E: "Linux LVM", 0xEE: "GPT protective", 0xEF: "EFI System",
    0xFD: "Linux RAID",
}
_EXTENDED = (0x05, 0x0F, 0x85)


@dataclasses.dataclass
class Partition:
    number: int
    start: int                    # bytes
    size: int                     # bytes
    scheme: str                   # "mbr" or "gpt"
    type_id: str                  # "0x83" or a GPT type GUID
    type_name: str
    bootable: bool = False
    name: Optional[str] = None    # GPT partition name
    part_uuid: Optional[str] = None

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def is_esp(self) -> bool:
        return self.type_id in (GPT_ESP, "0xef")

    @property
    def is_bios_boot(self) -> bool:
        return self.type_id == GPT_BIOS_BOOT

    @property
    def is_lvm(self) -> bool:
        return self.type_id in ("0x8e", "e6d6d379-f507-44c2-a23c-238f2a3df928")


@dataclasses.dataclass
class PartitionTable:
    scheme: str                   # "mbr", "gpt" or "none"
    partitions: List[Partition]
    disk_id: Optional[str] = None
    boot_code: bool = False       # MBR sector 0 carries boot code
    warnings: List[str] = dataclasses.field(default_factory=list)


def _mbr_entries(sector: bytes) -> List[Tuple[int, int, int, int]]:
    out = []
    for i in range(4):
        raw = sector[446 + 16 * i:446 + 16 * (i + 1)]
        status, ptype = raw[0], raw[4]
        lba, count = struct.unpack("<II", raw[8:16])
        out.append((status, ptype, lba, count))
    return out


def read_table(disk) -> PartitionTable:
    """Read the partition table of ``disk`` (anything with pread/size)."""
    mbr = disk.pread(0, SECTOR)
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        return PartitionTable("none", [])
    entries = _mbr_entries(mbr)
    # A filesystem boot sector (FAT/NTFS written straight on the disk) also
    # ends in 55AA; real MBR entries have status 0x00 or 0x80.
    if any(status not in (0, 0x80) for status, _t, _l, _c in entries):
        return PartitionTable("none", [])
    boot_code = any(mbr[:440])
    if any(ptype == 0xEE for _s, ptype, _l, _c in entries):
        table = _read_gpt(disk)
        if table is not None:
            table.boot_code = boot_code
            return table
    disk_id = "%08x" % struct.unpack("<I", mbr[440:444])[0]
    table = PartitionTable("mbr", [], disk_id=disk_id, boot_code=boot_code)
    for index, (status, ptype, lba, count) in enumerate(entries, start=1):
        if ptype == 0 or count == 0:
            continue
        table.partitions.append(_mbr_partition(
            index, status, ptype, lba, count, disk, table))
        if ptype in _EXTENDED:
            _read_logical(disk, lba, table)
    return table


def _mbr_partition(number, status, ptype, lba, count, disk, table):
    start, size = lba * SECTOR, count * SECTOR
    if start + size > disk.size:
        table.warnings.append("partition %d extends past the end of the disk"
                              % number)
    return Partition(number, start, size, "mbr", "0x%02x" % ptype,
                     MBR_TYPES.get(ptype, "unknown"), bootable=status == 0x80)


def _read_logical(disk, ext_lba: int, table: PartitionTable) -> None:
    """Walk the EBR chain; bounded and loop-proof."""
    seen = set()
    ebr_lba = ext_lba
    number = 5
    while ebr_lba and number < 5 + MAX_LOGICAL:
        if ebr_lba in seen or ebr_lba * SECTOR >= disk.size:
            table.warnings.append("extended partition chain loops or leaves "
                                  "the disk at sector %d" % ebr_lba)
            return
        seen.add(ebr_lba)
        ebr = disk.pread(ebr_lba * SECTOR, SECTOR)
        if ebr[510:512] != b"\x55\xaa":
            table.warnings.append("bad EBR signature at sector %d" % ebr_lba)
            return
        entries = _mbr_entries(ebr)
        status, ptype, lba, count = entries[0]
        if ptype and count:
            table.partitions.append(_mbr_partition(
                number, status, ptype, ebr_lba + lba, count, disk, table))
            number += 1
        _s, nptype, nlba, _c = entries[1]
        ebr_lba = ext_lba + nlba if nptype in _EXTENDED and nlba else 0
    if ebr_lba:
        table.warnings.append("more than %d logical partitions; rest ignored"
                              % MAX_LOGICAL)


def _guid(raw: bytes) -> str:
    return str(uuid.UUID(bytes_le=raw))


def _read_gpt(disk) -> Optional[PartitionTable]:
    hdr = disk.pread(SECTOR, SECTOR)
    if hdr[:8] != b"EFI PART":
        return None
    (hdr_size,) = struct.unpack("<I", hdr[12:16])
    if not 92 <= hdr_size <= SECTOR:
        raise PartitionTableError("GPT header size %d is invalid" % hdr_size)
    crc = struct.unpack("<I", hdr[16:20])[0]
    check = bytearray(hdr[:hdr_size])
    check[16:20] = b"\0\0\0\0"
    table = PartitionTable("gpt", [], disk_id=_guid(hdr[56:72]))
    if zlib.crc32(bytes(check)) != crc:
        table.warnings.append("GPT header checksum mismatch")
    entries_lba, count, entry_size = struct.unpack("<QII", hdr[72:88])
    if entry_size < 128 or entry_size > 4096 or entry_size % 8:
        raise PartitionTableError("GPT entry size %d is invalid" % entry_size)
    if count > MAX_GPT_ENTRIES:
        table.warnings.append("GPT claims %d entries; reading the first %d"
                              % (count, MAX_GPT_ENTRIES))
        count = MAX_GPT_ENTRIES
    raw = disk.pread(entries_lba * SECTOR, count * entry_size)
    for i in range(len(raw) // entry_size):
        ent = raw[i * entry_size:(i + 1) * entry_size]
        if not any(ent[:16]):
            continue
        first, last = struct.unpack("<QQ", ent[32:48])
        if last < first:
            table.warnings.append("GPT entry %d ends before it starts"
                                  % (i + 1))
            continue
        type_guid = _guid(ent[:16])
        name = ent[56:128].decode("utf-16-le", "replace").split("\0")[0]
        part = Partition(i + 1, first * SECTOR, (last - first + 1) * SECTOR,
                         "gpt", type_guid, GPT_TYPES.get(type_guid, "unknown"),
                         name=name or None, part_uuid=_guid(ent[16:32]))
        if part.end > disk.size:
            table.warnings.append("partition %d extends past the end of the "
                                  "disk" % part.number)
        table.partitions.append(part)
    return table
