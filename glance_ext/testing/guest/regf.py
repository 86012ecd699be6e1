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

"""A Windows registry hive (regf) writer, for the Windows guest fixtures.

Windows images carry their identity in the SOFTWARE hive
(``Microsoft\\Windows NT\\CurrentVersion``). No tool here writes a hive
from scratch (hivex edits an existing one), so this writes the documented
format: a 4 KiB base block, one hive bin, and nk (key), lf (subkey list),
value-list, vk (value) and data cells. Names are ASCII ("compressed"),
which is what Windows itself writes for such names. The result is read
back by libregf and by hivex in the tests.
"""

import struct
from typing import Dict, List, Tuple, Union

REG_SZ = 1
REG_DWORD = 4
Value = Union[str, int]
Tree = Dict[str, Union["Tree", Value]]


class _Bin:
    def __init__(self) -> None:
        self.data = bytearray()

    def alloc(self, payload: bytes) -> int:
        """Append an allocated cell; returns its offset (from bin start)."""
        size = (len(payload) + 4 + 7) & ~7
        offset = 32 + len(self.data)
        self.data += struct.pack("<i", -size) + payload
        self.data += b"\0" * (size - 4 - len(payload))
        return offset

    def patch(self, offset: int, at: int, fmt: str, *values) -> None:
        pos = offset - 32 + 4 + at
        struct.pack_into(fmt, self.data, pos, *values)


def _nk(name: str, flags: int) -> bytearray:
    raw = name.encode("ascii")
    nk = bytearray(76 + len(raw))
    nk[0:2] = b"nk"
    struct.pack_into("<H", nk, 2, flags)
    for off in (28, 32, 40, 44, 48):          # lists and class: none yet
        struct.pack_into("<I", nk, off, 0xFFFFFFFF)
    struct.pack_into("<HH", nk, 72, len(raw), 0)
    nk[76:] = raw
    return nk


def _value(hbin: _Bin, name: str, value: Value) -> int:
    if isinstance(value, int):
        vtype, data = REG_DWORD, struct.pack("<I", value)
    else:
        vtype, data = REG_SZ, (value + "\0").encode("utf-16-le")
    raw = name.encode("ascii")
    vk = bytearray(20 + len(raw))
    vk[0:2] = b"vk"
    if len(data) <= 4:
        # Small data lives in the offset field; bit 31 of the size says so.
        struct.pack_into("<HI4sIHH", vk, 2, len(raw),
                         len(data) | 0x80000000, data.ljust(4, b"\0"),
                         vtype, 1, 0)
    else:
        data_off = hbin.alloc(data)
        struct.pack_into("<HIIIHH", vk, 2, len(raw), len(data), data_off,
                         vtype, 1, 0)
    vk[20:] = raw
    return hbin.alloc(bytes(vk))


def _key(hbin: _Bin, name: str, tree: Tree, parent: int, root: bool) -> int:
    offset = hbin.alloc(bytes(_nk(name, 0x2C if root else 0x20)))
    hbin.patch(offset, 16, "<I", parent if not root else 0)
    subkeys = sorted(((k, v) for k, v in tree.items() if isinstance(v, dict)),
                     key=lambda kv: kv[0].upper())
    values = [(k, v) for k, v in tree.items() if not isinstance(v, dict)]
    children: List[Tuple[int, str]] = []
    for sub_name, sub_tree in subkeys:
        children.append((_key(hbin, sub_name, sub_tree, offset, False),
                         sub_name))
    if children:
        lf = bytearray(b"lf" + struct.pack("<H", len(children)))
        for child, cname in children:
            lf += struct.pack("<I", child) + \
                cname.encode("ascii")[:4].ljust(4, b"\0")
        lf_off = hbin.alloc(bytes(lf))
        hbin.patch(offset, 20, "<I", len(children))
        hbin.patch(offset, 28, "<I", lf_off)
        hbin.patch(offset, 52, "<I", 2 * max(len(c) for _o, c in children))
    if values:
        vk_offs = [_value(hbin, k, v) for k, v in values]
        vl_off = hbin.alloc(struct.pack("<%dI" % len(vk_offs), *vk_offs))
        hbin.patch(offset, 36, "<I", len(values))
        hbin.patch(offset, 40, "<I", vl_off)
        hbin.patch(offset, 60, "<I", 2 * max(len(k) for k, _v in values))
        hbin.patch(offset, 64, "<I", max(
            4 if isinstance(v, int) else 2 * (len(v) + 1)
            for _k, v in values))
    return offset


def write_hive(path: str, tree: Tree, root_name: str = "ROOT") -> None:
    """Write ``tree`` ({name: subtree | str | int}) as a regf hive."""
    hbin = _Bin()
    root = _key(hbin, root_name, tree, 0, True)
    body = bytes(hbin.data)
    size = (32 + len(body) + 4 + 4095) & ~4095
    free = size - 32 - len(body)
    body += struct.pack("<i", free) + b"\0" * (free - 4)   # one free cell
    header = bytearray(4096)
    struct.pack_into("<4sIIQIIIIIII", header, 0, b"regf", 1, 1, 0, 1, 5,
                     0, 1, root, size, 1)
    name = "\\SystemRoot\\System32\\Config\\SOFTWARE".encode("utf-16-le")
    header[48:48 + min(64, len(name))] = name[:64]
    checksum = 0
    for (word,) in struct.iter_unpack("<I", bytes(header[:508])):
        checksum ^= word
    struct.pack_into("<I", header, 508, checksum)
    hbin_hdr = struct.pack("<4sIIQQI", b"hbin", 0, size, 0, 0, 0)
    with open(path, "wb") as fh:
        fh.write(bytes(header) + hbin_hdr + body)


def windows_software(product: str, build: str, installation_type: str,
                     edition: str, display_version: str = "") -> Tree:
    """The keys of a SOFTWARE hive that identify Windows."""
    current = {"ProductName": product, "CurrentBuildNumber": build,
               "CurrentBuild": build, "InstallationType": installation_type,
               "EditionID": edition, "CurrentVersion": "6.3",
               "CurrentMajorVersionNumber": 10,
               "CurrentMinorVersionNumber": 0,
               "SystemRoot": "C:\\Windows"}
    if display_version:
        current["DisplayVersion"] = display_version
    return {"Microsoft": {"Windows NT": {"CurrentVersion": current},
                          "Windows": {"CurrentVersion": {
                              "ProgramFilesDir": "C:\\Program Files"}}}}
