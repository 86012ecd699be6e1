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

"""Which filesystem (or volume format) a partition holds, and its identity.

Only the signature, UUID and label are read here (a few KiB); fstab names
filesystems by ``UUID=``/``LABEL=``, so the engine needs these even for
filesystems it cannot open. Offsets are those of the on-disk formats.
"""

import dataclasses
import struct
import uuid
from typing import Optional


@dataclasses.dataclass
class FsIdentity:
    fs_type: str                  # ext2/ext3/ext4/xfs/vfat/ntfs/btrfs/...
    uuid: Optional[str] = None
    label: Optional[str] = None


def _cstr(raw: bytes) -> Optional[str]:
    text = raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    return text or None


def probe(view) -> Optional[FsIdentity]:
    """Identify the content of ``view`` (pread/get_size); None if unknown."""
    head = view.pread(0, 4096)
    if len(head) < 512:
        return None
    if head[:4] == b"XFSB":
        return FsIdentity("xfs", str(uuid.UUID(bytes=head[32:48])),
                          _cstr(head[108:120]))
    if head[3:11] == b"NTFS    ":
        serial = struct.unpack("<Q", head[0x48:0x50])[0]
        return FsIdentity("ntfs", "%016X" % serial)
    if head[:6] == b"LUKS\xba\xbe":
        return FsIdentity("crypto_LUKS", _cstr(head[168:208]))
    sb = view.pread(1024, 1024)
    if len(sb) == 1024 and sb[56:58] == b"\x53\xef":
        compat, incompat, ro_compat = struct.unpack("<III", sb[92:104])
        if incompat & 0x40 or incompat & 0x200 or ro_compat & 0x8:
            fs_type = "ext4"      # extents, flex_bg or huge_file
        elif compat & 0x4:
            fs_type = "ext3"      # has_journal
        else:
            fs_type = "ext2"
        return FsIdentity(fs_type, str(uuid.UUID(bytes=sb[104:120])),
                          _cstr(sb[120:136]))
    for sector in range(4):
        lab = head[sector * 512:(sector + 1) * 512]
        if lab[:8] == b"LABELONE" and lab[24:32] == b"LVM2 001":
            return FsIdentity("LVM2_member", _lvm_uuid(lab[32:64]))
    if head[510:512] == b"\x55\xaa" and head[11:13] in (b"\0\x02", b"\0\x04",
                                                        b"\0\x08", b"\0\x10"):
        if head[82:87] == b"FAT32":
            serial, label = head[67:71], head[71:82]
            return FsIdentity("vfat", _fat_serial(serial), _fat_label(label))
        if head[54:57] == b"FAT":
            serial, label = head[39:43], head[43:54]
            return FsIdentity("vfat", _fat_serial(serial), _fat_label(label))
    bt = view.pread(0x10000, 4096)
    if len(bt) >= 0x100 and bt[0x40:0x48] == b"_BHRfS_M":
        return FsIdentity("btrfs", str(uuid.UUID(bytes=bt[0x20:0x30])),
                          _cstr(bt[0x12B:0x22B]))
    if head[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE"):
        return FsIdentity("swap", str(uuid.UUID(bytes=head[1036:1052])),
                          _cstr(head[1052:1068]))
    iso = view.pread(0x8000, 8)
    if iso[1:6] == b"CD001":
        return FsIdentity("iso9660")
    return None


def _fat_serial(raw: bytes) -> str:
    value = struct.unpack("<I", raw)[0]
    return "%04X-%04X" % (value >> 16, value & 0xFFFF)


def _fat_label(raw: bytes) -> Optional[str]:
    text = raw.decode("ascii", "replace").strip()
    return None if text in ("", "NO NAME") else text


def _lvm_uuid(raw: bytes) -> str:
    text = raw.decode("ascii", "replace")
    # LVM prints its 32-character ids in groups 6-4-4-4-4-4-6.
    sizes = (6, 4, 4, 4, 4, 4, 6)
    parts, pos = [], 0
    for n in sizes:
        parts.append(text[pos:pos + n])
        pos += n
    return "-".join(parts)
