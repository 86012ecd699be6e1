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

"""rpm's header blob: what every rpm database stores per package.

Why hand-written: the PyPI readers of rpm data either read ``.rpm`` package
files (``rpmfile``: it expects the lead and signature header before the
header, keeps its header parser private and validates with ``assert``) or
wrap a native binary that opens a host path (``pyrpmdb``), which the
bounded guest reader cannot hand it. The blob format is small and stable
(rpm's ``headerImport``): ``il`` index entries and ``dl`` data bytes as
big-endian int32, ``il`` entries of (tag, type, offset, count), then the
data store. Only the few tags the inventory needs are decoded, and every
offset and count is checked against the blob before it is used.
"""

import struct
from typing import Dict, List, Optional, Union

from glance_ext.guest.packages import InventoryError
from glance_ext.guest.packages import Package

# Tags (rpmtag.h) and types (rpm's rpmTagType).
NAME, VERSION, RELEASE, EPOCH = 1000, 1001, 1002, 1003
VENDOR, LICENSE, ARCH, SOURCERPM = 1011, 1014, 1022, 1044
WANTED = frozenset((NAME, VERSION, RELEASE, EPOCH, VENDOR, LICENSE, ARCH,
                    SOURCERPM))
T_INT32, T_STRING, T_STRING_ARRAY, T_I18NSTRING = 4, 6, 8, 9
# rpm's own limits (header_internal.h): more is a corrupt header.
MAX_TAGS = 0x0000FFFF
MAX_DATA = 0x0FFFFFFF

Value = Union[str, int, None]


def parse(blob: bytes) -> Dict[int, Value]:
    """The wanted tags of one header blob; InventoryError if corrupt."""
    if len(blob) < 8:
        raise InventoryError("an rpm header of %d bytes is too short"
                             % len(blob))
    il, dl = struct.unpack_from(">ii", blob, 0)
    if not 0 < il <= MAX_TAGS or not 0 <= dl <= MAX_DATA or \
            8 + il * 16 + dl > len(blob):
        raise InventoryError("an rpm header claims %d entries and %d data "
                             "bytes in a %d-byte blob (corrupt)"
                             % (il, dl, len(blob)))
    store = 8 + il * 16
    out: Dict[int, Value] = {}
    for index in range(il):
        tag, kind, offset, count = struct.unpack_from(">iiii", blob,
                                                      8 + index * 16)
        if tag not in WANTED:
            continue
        if not 0 <= offset < dl or count < 1:
            raise InventoryError("rpm header tag %d points outside its "
                                 "data (corrupt)" % tag)
        start = store + offset
        if kind == T_INT32:
            if offset + 4 > dl:
                raise InventoryError("rpm header tag %d is truncated" % tag)
            out[tag] = struct.unpack_from(">i", blob, start)[0]
        elif kind in (T_STRING, T_STRING_ARRAY, T_I18NSTRING):
            end = blob.find(b"\0", start, store + dl)
            if end < 0:
                raise InventoryError("rpm header string tag %d has no "
                                     "terminator (corrupt)" % tag)
            out[tag] = blob[start:end].decode("utf-8", "replace")
    return out


def source_name(srpm: Optional[str]) -> tuple:
    """``bash-5.1.8-6.el9.src.rpm`` -> ("bash", "5.1.8-6.el9")."""
    if not srpm or not srpm.endswith(".rpm"):
        return None, None
    base = srpm[:-4]
    base = base.rsplit(".", 1)[0]            # .src / .nosrc
    parts = base.rsplit("-", 2)
    if len(parts) != 3:
        return None, None
    return parts[0], "%s-%s" % (parts[1], parts[2])


def package(blob: bytes) -> Package:
    tags = parse(blob)
    name, version = tags.get(NAME), tags.get(VERSION)
    if not isinstance(name, str) or not isinstance(version, str):
        raise InventoryError("an rpm header without NAME or VERSION "
                             "(corrupt)")
    source, source_version = source_name(tags.get(SOURCERPM))
    epoch = tags.get(EPOCH)
    return Package(name=name, version=version,
                   release=tags.get(RELEASE) or None,
                   epoch=epoch if isinstance(epoch, int) else None,
                   arch=tags.get(ARCH) or None, source=source,
                   source_version=source_version,
                   vendor=tags.get(VENDOR) or None,
                   license=tags.get(LICENSE) or None)


def packages(blobs: List[bytes]) -> List[Package]:
    return [package(b) for b in blobs]
