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

"""Generate the malicious/tricky image corpus and its expected verdicts.

Every file is made at test time with qemu-img plus byte patching (nothing
binary is committed); each case names the class of
/work/shared/notes/anchors.md it covers ("anchor"), the claimed disk_format,
the expected verdict and the rejection codes of which at least one must be
reported. ``policy`` holds Policy overrides for cases about operator policy.

    python -m glance_ext.testing.corpus [OUT_DIR]   # default: data_dir("corpus")
"""

import dataclasses
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Tuple

from glance_ext import testing

MiB = 1024 * 1024
DEFAULT_OUT = testing.data_dir("corpus")


@dataclasses.dataclass
class Case:
    name: str
    anchor: str
    claimed: str
    expect: str                      # "accepted" or "rejected"
    codes: Tuple[str, ...] = ()      # rejection: at least one of these
    container: str = "bare"
    policy: Dict[str, object] = dataclasses.field(default_factory=dict)
    note: str = ""
    file: str = ""


def qemu_img(*args: str) -> None:
    proc = subprocess.run(["qemu-img"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode:
        raise RuntimeError("qemu-img %s failed: %s" % (" ".join(args),
                                                       proc.stdout))


def patch(path: str, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def read(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def write_bytes(path: str, data: bytes, size: Optional[int] = None) -> None:
    with open(path, "wb") as f:
        f.write(data)
        if size:
            f.truncate(size)


# ---------------------------------------------------------------- qcow2 ----
def qcow2(path: str, size: str = "1M", *opts: str) -> None:
    args = ["create", "-q", "-f", "qcow2"]
    for o in opts:
        args += ["-o", o]
    qemu_img(*(args + [path, size]))


def qcow2_backing(path: str, backing: str, compat: str = "1.1") -> None:
    qemu_img("create", "-q", "-f", "qcow2", "-o", "compat=" + compat, "-u",
             "-b", backing, "-F", "raw", path, "1M")


def qcow2_exts(path: str) -> Tuple[int, List[Tuple[int, bytes]]]:
    hdr = read(path, 0, 65536)
    start = struct.unpack(">I", hdr[100:104])[0]
    exts, off = [], start
    while True:
        etype, length = struct.unpack(">II", hdr[off:off + 8])
        if etype == 0:
            return start, exts
        exts.append((etype, hdr[off + 8:off + 8 + length]))
        off += 8 + ((length + 7) & ~7)


def qcow2_write_exts(path: str, start: int,
                     exts: List[Tuple[int, bytes]]) -> None:
    blob = b""
    for etype, data in exts + [(0, b"")]:
        blob += struct.pack(">II", etype, len(data)) + data
        blob += b"\0" * (((len(data) + 7) & ~7) - len(data))
    patch(path, start, blob + b"\0" * 64)


def qcow2_set_incompat(path: str, bits: int) -> None:
    (cur,) = struct.unpack(">Q", read(path, 72, 8))
    patch(path, 72, struct.pack(">Q", cur | bits))


# ----------------------------------------------------------------- vmdk ----
def vmdk(path: str, subformat: str = "monolithicSparse") -> None:
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=" + subformat,
             path, "1M")


def vmdk_edit_descriptor(path: str, edit: Callable[[str], str]) -> None:
    hdr = read(path, 0, 512)
    desc_sec, desc_num = struct.unpack("<QQ", hdr[28:44])
    raw = read(path, desc_sec * 512, desc_num * 512)
    text = raw.split(b"\0", 1)[0].decode("ascii")
    new = edit(text).encode("ascii")
    assert len(new) <= len(raw), "descriptor grew too large"
    patch(path, desc_sec * 512, new + b"\0" * (len(raw) - len(new)))


TEXT_VMDK = ('# Disk DescriptorFile\nversion=1\nCID=fffffffe\n'
             'parentCID=ffffffff\ncreateType="monolithicSparse"\n\n'
             'RW 2048 SPARSE "target.vmdk"\n')


# ----------------------------------------------------------------- vhdx ----
VHDX_META_GUID = "8B7CA206-4790-4B9A-B8FE-575F050F886E"
PARENT_LOCATOR_GUID = "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"


def _guid_bytes(guid: str) -> bytes:
    import uuid
    return uuid.UUID(guid).bytes_le


def vhdx_meta_offset(path: str) -> Tuple[int, int]:
    """(offset of the metadata region entry in the file, region offset)."""
    table = read(path, 192 * 1024, 64 * 1024)
    (count,) = struct.unpack("<I", table[8:12])
    for i in range(count):
        entry = table[16 + 32 * i:48 + 32 * i]
        if entry[:16] == _guid_bytes(VHDX_META_GUID):
            (offset,) = struct.unpack("<Q", entry[16:24])
            return 192 * 1024 + 16 + 32 * i, offset
    raise AssertionError("no metadata region")


# ------------------------------------------------------------- MBR / ISO ---
def pte(boot: int, ostype: int, chs: Tuple[int, int, int] = (0, 2, 0),
        start: int = 1, size: int = 2047) -> bytes:
    return struct.pack("<B3BB3BII", boot, *chs, ostype, 0xFF, 0xFF, 0xFF,
                       start, size)


def mbr_image(path: str, entries: List[bytes]) -> None:
    sector = bytearray(512)
    for i, e in enumerate(entries):
        sector[446 + 16 * i:462 + 16 * i] = e
    sector[510:512] = b"\x55\xaa"
    write_bytes(path, bytes(sector), MiB)


def iso_bytes(size: int = MiB) -> bytearray:
    data = bytearray(size)
    pvd = bytearray(2048)
    pvd[0] = 1
    pvd[1:6] = b"CD001"
    pvd[6] = 1
    blocks = size // 2048
    pvd[80:88] = struct.pack("<I", blocks) + struct.pack(">I", blocks)
    pvd[128:132] = struct.pack("<H", 2048) + struct.pack(">H", 2048)
    data[32768:34816] = pvd
    term = bytearray(2048)
    term[0] = 255
    term[1:6] = b"CD001"
    term[6] = 1
    data[34816:36864] = term
    return data


# ------------------------------------------- qemu formats Glance lacks ---
CLOOP_V2_MAGIC = (b"#!/bin/sh\n#V2.0 Format\n"
                  b"modprobe cloop file=$0 && mount -r -t iso9660 "
                  b"/dev/cloop $1\n")


def bochs_image(path: str, disk: int = MiB) -> None:
    """A bochs "growing" redolog that qemu opens (``-f bochs``): header,
    then a catalog with every extent unallocated."""
    extent = 64 * 1024
    catalog = disk // extent
    header = bytearray(512)
    header[0:22] = b"Bochs Virtual HD Image"
    header[32:39] = b"Redolog"
    header[48:55] = b"Growing"
    header[64:92] = struct.pack("<IIIIIIQ", 0x00020000, 512, catalog,
                                extent // 512 // 8, extent, 0, disk)
    write_bytes(path, bytes(header) + b"\xff" * (4 * catalog), 1024)


def cloop_image(path: str, block: int = 64 * 1024) -> None:
    """A cloop v2 image of one zlib block that qemu opens (``-f cloop``)."""
    import zlib
    data = zlib.compress(bytes(block))
    head = CLOOP_V2_MAGIC + bytes(128 - len(CLOOP_V2_MAGIC))
    head += struct.pack(">II", block, 1)
    start = len(head) + 16
    head += struct.pack(">QQ", start, start + len(data))
    write_bytes(path, head + data)


def dmg_image(path: str, sectors: int = 2048) -> None:
    """A UDIF (dmg) image that qemu opens (``-f dmg``): an XML property
    list whose one "mish" block maps every sector to zeroes, then the
    512-byte "koly" trailer at the end of the file."""
    import base64
    mish = bytearray(204)
    mish[0:4] = b"mish"
    mish[4:8] = struct.pack(">I", 1)
    mish += struct.pack(">IIQQQQ", 2, 0, 0, sectors, 0, 0)       # zeroes
    mish += struct.pack(">IIQQQQ", 0xFFFFFFFF, 0, sectors, 0, 0, 0)
    xml = (b'<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">'
           b"<dict><key>resource-fork</key><dict><key>blkx</key><array>"
           b"<dict><key>Data</key><data>" + base64.b64encode(bytes(mish)) +
           b"</data></dict></array></dict></dict></plist>\n")
    body = xml + bytes(-len(xml) % 512)
    koly = bytearray(512)
    koly[0:12] = b"koly" + struct.pack(">II", 4, 512)
    koly[0xD8:0xE8] = struct.pack(">QQ", 0, len(xml))
    koly[0x1EC:0x1F4] = struct.pack(">Q", sectors)
    write_bytes(path, body + bytes(koly))


def vmdk_text(extent: str) -> bytes:
    return ('# Disk DescriptorFile\nversion=1\nCID=fffffffe\n'
            'parentCID=ffffffff\ncreateType="monolithicFlat"\n\n'
            'RW 2048 FLAT "%s" 0\n' % extent).encode()


def in_system_area(header: bytes) -> bytes:
    """A valid ISO whose unused system area (first 32 KiB) starts with
    ``header``."""
    data = iso_bytes()
    data[:len(header)] = header
    return bytes(data)


def probe_tie(first: bytes, second_at_0x40: bytes = b"\x7f\x10\xda\xbe",
              size: int = 4096) -> bytes:
    """A buffer two qemu probes score alike: a magic at 0 and the VDI
    signature at 0x40 (qemu then takes the earlier driver of its list)."""
    data = bytearray(size)
    data[:len(first)] = first
    data[0x40:0x40 + len(second_at_0x40)] = second_at_0x40
    return bytes(data)


def luks_slot(path: str, slot: int, active: Optional[int] = None,
              iterations: Optional[int] = None,
              stripes: Optional[int] = None) -> None:
    start = 208 + 48 * slot
    if active is not None:
        patch(path, start, struct.pack(">I", active))
    if iterations is not None:
        patch(path, start + 4, struct.pack(">I", iterations))
    if stripes is not None:
        patch(path, start + 44, struct.pack(">I", stripes))


# ------------------------------------------------------------------ LUKS ---
_LUKS_CACHE: Dict[str, str] = {}


def _luks_cached(key: str, path: str, options: str) -> None:
    """Copy a LUKS volume made once per run with ``options`` to ``path``.

    Creating one costs seconds of key stretching, hence the cache. qemu
    times PBKDF2 with the thread's CPU clock, which ticks in jiffies: a
    run shorter than one tick reads as zero and qemu-img fails with
    "Unable to get accurate CPU usage" (seen with both qemu's defaults
    and iter-time=10 on a fresh, busy machine). A new attempt measures
    again; any other failure is raised at once.
    """
    cached = _LUKS_CACHE.get(key)
    if not cached or not os.path.exists(cached):
        cached = os.path.join(os.path.dirname(path), "_luks_%s.cache" % key)
        for attempt in range(5):
            try:
                qemu_img("create", "-q", "-f", "luks", "--object",
                         "secret,id=s0,data=corpus", "-o", options,
                         cached, "1M")
                break
            except RuntimeError as exc:
                if "accurate CPU usage" not in str(exc) or attempt == 4:
                    raise
        _LUKS_CACHE[key] = cached
    shutil.copyfile(cached, path)


def luks_default(path: str) -> None:
    """``qemu-img create -f luks`` with qemu's defaults (iter-time 2 s):
    the key-stretching counts an operator's tools really produce."""
    _luks_cached("default", path, "key-secret=s0")


def luks(path: str) -> None:
    """A LUKS volume with a short key stretch (iter-time 10 ms)."""
    _luks_cached("v1", path, "key-secret=s0,iter-time=10")


# ----------------------------------------------------------------- cases ---
def build(out: str) -> List[Case]:
    os.makedirs(out, exist_ok=True)
    cases: List[Case] = []

    def add(case: Case, make: Callable[[str], None], ext: str = "img"):
        case.file = os.path.join(out, "%s.%s" % (case.name, ext))
        if os.path.exists(case.file):
            os.unlink(case.file)
        make(case.file)
        cases.append(case)

    tmp = os.path.join(out, "_work")
    os.makedirs(tmp, exist_ok=True)

    # Good images (accepted).
    for fmt, qfmt, opts in (("raw", "raw", ()), ("qcow2", "qcow2", ()),
                            ("vmdk", "vmdk", ()), ("vhdx", "vhdx", ()),
                            ("vhd", "vpc", ()), ("vdi", "vdi", ())):
        add(Case("good_" + fmt, "good", fmt, "accepted"),
            lambda p, q=qfmt: qemu_img("create", "-q", "-f", q, p, "1M"))
    add(Case("good_vmdk_stream", "good", "vmdk", "accepted"),
        lambda p: vmdk(p, "streamOptimized"))

    # 1. qcow2 backing files.
    add(Case("qcow2_backing_abs", "1", "qcow2", "rejected", ("backing_file",)),
        lambda p: qcow2_backing(p, "/etc/passwd"))
    add(Case("qcow2_backing_missing", "1/21", "qcow2", "rejected",
             ("backing_file",), note="same message as an existing path"),
        lambda p: qcow2_backing(p, "/nonexistent/glance_ext/nothing"))
    add(Case("qcow2_backing_relative", "1", "qcow2", "rejected",
             ("backing_file",)),
        lambda p: qcow2_backing(p, "../../../../etc/passwd"))
    add(Case("qcow2_backing_staged_id", "1", "qcow2", "rejected",
             ("backing_file",)),
        lambda p: qcow2_backing(
            p, "/var/lib/glance/staging/0e6a7bbf-7b4b-4d2b-9b1b-1f0f1e1d1c1b"))
    add(Case("qcow2_backing_compat010", "1", "qcow2", "rejected",
             ("backing_file",)),
        lambda p: qcow2_backing(p, "/etc/passwd", compat="0.10"))

    def backing_nul(p):
        qcow2_backing(p, "/etc/passwdXXXX")
        (off,) = struct.unpack(">Q", read(p, 8, 8))
        patch(p, off + 11, b"\0")
    add(Case("qcow2_backing_nul", "1", "qcow2", "rejected", ("backing_file",)),
        backing_nul)

    def backing_format_ext_only(p):
        qcow2_backing(p, "/etc/passwd")
        patch(p, 8, b"\0" * 12)  # clear offset+size, keep the extension
    add(Case("qcow2_backing_format_ext_only", "1", "qcow2", "rejected",
             ("backing_file",), note="no offset, only the backing-format "
             "header extension"), backing_format_ext_only)

    # 2. external data file.
    def data_file(p, name=None):
        qcow2(p, "1M", "data_file=" + os.path.join(tmp, "df.raw"))
        if name:
            start, exts = qcow2_exts(p)
            exts = [(t, name.encode() if t == 0x44415441 else d)
                    for t, d in exts]
            qcow2_write_exts(p, start, exts)
    add(Case("qcow2_data_file", "2", "qcow2", "rejected", ("data_file",)),
        data_file)
    add(Case("qcow2_data_file_json", "2", "qcow2", "rejected", ("data_file",)),
        lambda p: data_file(p, 'json:{"driver":"file","filename":'
                               '"/etc/shadow"}'))

    def data_file_bit_only(p):
        qcow2(p)
        qcow2_set_incompat(p, 1 << 2)
    add(Case("qcow2_data_file_bit_only", "2", "qcow2", "rejected",
             ("data_file",)), data_file_bit_only)

    def data_file_ext_only(p):
        data_file(p)
        (cur,) = struct.unpack(">Q", read(p, 72, 8))
        patch(p, 72, struct.pack(">Q", cur & ~(1 << 2)))
    add(Case("qcow2_data_file_ext_only", "2", "qcow2", "rejected",
             ("data_file",)), data_file_ext_only)

    # 3. unknown features, versions.
    def unknown_bit(p):
        qcow2(p)
        qcow2_set_incompat(p, 1 << 10)
    add(Case("qcow2_unknown_incompat", "3", "qcow2", "rejected",
             ("qcow2_unknown_features",)), unknown_bit)
    add(Case("qcow2_version1", "3", "qcow2", "rejected",
             ("qcow2_version",)),
        lambda p: qemu_img("create", "-q", "-f", "qcow", p, "1M"))

    def version4(p):
        qcow2(p)
        patch(p, 4, struct.pack(">I", 4))
    add(Case("qcow2_version4", "3", "qcow2", "rejected", ("qcow2_version",)),
        version4)

    # 4. valid but unusual qcow2 (false-positive controls).
    add(Case("qcow2_extended_l2", "4", "qcow2", "accepted"),
        lambda p: qcow2(p, "1M", "extended_l2=on"))
    add(Case("qcow2_zstd", "4", "qcow2", "accepted"),
        lambda p: qcow2(p, "1M", "compression_type=zstd"))
    add(Case("qcow2_compat010", "4", "qcow2", "accepted"),
        lambda p: qcow2(p, "1M", "compat=0.10"))

    # 5. QED.
    add(Case("qed", "5", "qed", "rejected", ("banned_format",)),
        lambda p: qemu_img("create", "-q", "-f", "qed", p, "1M"))
    add(Case("qed_claimed_qcow2", "5", "qcow2", "rejected",
             ("banned_format",)),
        lambda p: qemu_img("create", "-q", "-f", "qed", p, "1M"))

    # 6. VMDK create types that name other files.
    for sub in ("monolithicFlat", "twoGbMaxExtentSparse",
                "twoGbMaxExtentFlat"):
        add(Case("vmdk_" + sub, "6", "vmdk", "rejected",
                 ("vmdk_descriptor_only",)),
            lambda p, s=sub: vmdk(p, s), ext="vmdk")
    add(Case("vmdk_vmfs", "6", "vmdk", "rejected", ("vmdk_descriptor_only",)),
        lambda p: write_bytes(p, TEXT_VMDK.replace(
            "monolithicSparse", "vmfs").replace(
            'SPARSE "target.vmdk"', 'VMFS "target-flat.vmdk"').encode()),
        ext="vmdk")
    add(Case("vmdk_createtype_patched", "6", "vmdk", "rejected",
             ("vmdk_descriptor", "vmdk_create_type")),
        lambda p: (vmdk(p), vmdk_edit_descriptor(
            p, lambda t: t.replace('"monolithicSparse"', '"vmfsSparse"'))))
    add(Case("vmdk_sparse_policy_stream_only", "6", "vmdk", "rejected",
             ("vmdk_create_type",),
             policy={"vmdk_allowed_types": ("streamOptimized",)}),
        lambda p: vmdk(p))

    # 7. descriptor lines.
    add(Case("vmdk_unknown_access", "7", "vmdk", "rejected",
             ("vmdk_descriptor",)),
        lambda p: (vmdk(p), vmdk_edit_descriptor(
            p, lambda t: t.replace("RW ", "XX ", 1))))

    def slash_extent(p):
        vmdk(p)
        vmdk_edit_descriptor(p, lambda t: "\n".join(
            'RW 2048 SPARSE "/etc/shadow"' if ln.startswith("RW ") else ln
            for ln in t.split("\n")))
    add(Case("vmdk_slash_extent", "7", "vmdk", "rejected",
             ("vmdk_descriptor",)), slash_extent)
    add(Case("vmdk_no_extent", "7", "vmdk", "rejected", ("vmdk_descriptor",)),
        lambda p: (vmdk(p), vmdk_edit_descriptor(p, lambda t: "\n".join(
            ln for ln in t.split("\n") if not ln.startswith("RW ")))))
    add(Case("vmdk_two_extents", "7", "vmdk", "rejected",
             ("extent_reference",)),
        lambda p: (vmdk(p), vmdk_edit_descriptor(p, lambda t: t.replace(
            "# The Disk Data Base",
            'RW 2048 SPARSE "other.vmdk"\n# The Disk Data Base'))))
    add(Case("vmdk_parent_hint", "7", "vmdk", "rejected",
             ("parent_reference",)),
        lambda p: (vmdk(p), vmdk_edit_descriptor(p, lambda t: t.replace(
            "parentCID=ffffffff",
            'parentCID=12345678\nparentFileNameHint="base.vmdk"'))))

    # 8. VMDK header tampering.
    add(Case("vmdk_bad_magic", "8", "vmdk", "rejected", ("format_mismatch",),
             note="no longer a VMDK: raw data claimed as vmdk"),
        lambda p: (vmdk(p), patch(p, 0, b"KDMX")))
    add(Case("vmdk_bad_version", "8", "vmdk", "rejected", ("malformed",)),
        lambda p: (vmdk(p), patch(p, 4, struct.pack("<I", 7))))
    add(Case("vmdk_desc_offset", "8", "vmdk", "rejected", ("malformed",)),
        lambda p: (vmdk(p), patch(p, 28, struct.pack("<Q", 5))))
    add(Case("vmdk_desc_size_huge", "8", "vmdk", "rejected", ("malformed",)),
        lambda p: (vmdk(p), patch(p, 36, struct.pack("<Q", 0xFFFFFFFF))))

    # 9. streamOptimized footer tampering. qemu only reads the footer when
    # the header's grain directory offset is GD_AT_END (as VMware writes it).
    def stream_gd_at_end(p):
        # qemu writes no footer for an empty image; append a VMware-style
        # footer marker + footer (the header as created) + end-of-stream.
        vmdk(p, "streamOptimized")
        header = read(p, 0, 512)
        with open(p, "ab") as f:
            f.write(struct.pack("<QII", 1, 0, 3) + bytes(496))
            f.write(header)
            f.write(bytes(512))
        patch(p, 56, struct.pack("<Q", 0xFFFFFFFFFFFFFFFF))
    add(Case("vmdk_stream_gd_at_end", "9", "vmdk", "accepted",
             note="control: valid footer"), stream_gd_at_end)

    def footer_version(p):
        stream_gd_at_end(p)
        size = os.path.getsize(p)
        patch(p, size - 1024 + 4, struct.pack("<I", 2))
    add(Case("vmdk_stream_footer_version", "9", "vmdk", "rejected",
             ("vmdk_footer",)), footer_version)

    def footer_eos(p):
        stream_gd_at_end(p)
        size = os.path.getsize(p)
        patch(p, size - 512 + 12, struct.pack("<I", 7))
    add(Case("vmdk_stream_eos_marker", "9", "vmdk", "rejected",
             ("vmdk_footer",)), footer_eos)

    def footer_gd_at_end(p):
        stream_gd_at_end(p)
        size = os.path.getsize(p)
        patch(p, size - 1024 + 56, struct.pack("<Q", 0xFFFFFFFFFFFFFFFF))
    add(Case("vmdk_stream_footer_points_to_footer", "9", "vmdk", "rejected",
             ("vmdk_footer",)), footer_gd_at_end)

    # 10. text descriptor with an allowed createType.
    add(Case("vmdk_text_monolithic_sparse", "10", "vmdk", "rejected",
             ("vmdk_descriptor_only",)),
        lambda p: write_bytes(p, TEXT_VMDK.encode()), ext="vmdk")

    # 11. VHDX tables.
    def vhdx_region_count(p):
        qemu_img("create", "-q", "-f", "vhdx", p, "1M")
        patch(p, 192 * 1024 + 8, struct.pack("<I", 5000))
    add(Case("vhdx_region_count", "11", "vhdx", "rejected", ("malformed",)),
        vhdx_region_count)

    def vhdx_meta_count(p):
        qemu_img("create", "-q", "-f", "vhdx", p, "1M")
        _, meta = vhdx_meta_offset(p)
        patch(p, meta + 10, struct.pack("<H", 4000))
    add(Case("vhdx_metadata_count", "11", "vhdx", "rejected",
             ("malformed",)), vhdx_meta_count)

    def vhdx_meta_far(p):
        qemu_img("create", "-q", "-f", "vhdx", p, "1M")
        entry, _ = vhdx_meta_offset(p)
        patch(p, entry + 16, struct.pack("<Q", 1 << 40))
    add(Case("vhdx_metadata_far", "11", "vhdx", "rejected", ("malformed",)),
        vhdx_meta_far)

    def vhdx_parent(p):
        qemu_img("create", "-q", "-f", "vhdx", p, "1M")
        _, meta = vhdx_meta_offset(p)
        # Turn the last metadata entry into a parent locator entry.
        (count,) = struct.unpack("<H", read(p, meta + 10, 2))
        patch(p, meta + 32 + 32 * (count - 1),
              _guid_bytes(PARENT_LOCATOR_GUID))
    add(Case("vhdx_parent_locator", "11", "vhdx", "rejected",
             ("parent_reference",)), vhdx_parent)

    def vhd_differencing(p):
        qemu_img("create", "-q", "-f", "vpc", p, "1M")
        footer = bytearray(read(p, 0, 512))
        footer[60:64] = struct.pack(">I", 4)
        footer[64:68] = b"\0\0\0\0"
        footer[64:68] = struct.pack(">I", (~sum(footer)) & 0xFFFFFFFF)
        patch(p, 0, bytes(footer))
    add(Case("vhd_differencing", "11", "vhd", "rejected",
             ("parent_reference",), note="parent reference in VHD"),
        vhd_differencing)

    # 12. MBR / GPT oddities and controls.
    add(Case("mbr_bad_boot_flag", "12", "raw", "rejected",
             ("mbr_boot_flag",)),
        lambda p: mbr_image(p, [pte(0x42, 0x83, start=2048)]))
    add(Case("gpt_pmbr", "12", "raw", "accepted"),
        lambda p: mbr_image(p, [pte(0, 0xEE)]))
    add(Case("gpt_pmbr_claimed_gpt", "12", "gpt", "accepted"),
        lambda p: mbr_image(p, [pte(0, 0xEE)]))
    add(Case("gpt_pmbr_hybrid", "12", "raw", "accepted",
             note="protective MBR plus other partitions (hybrid MBR)"),
        lambda p: mbr_image(p, [pte(0, 0xEE), pte(0x80, 0x0C, start=64)]))
    add(Case("gpt_pmbr_odd_chs", "12", "raw", "accepted"),
        lambda p: mbr_image(p, [pte(0, 0xEE, chs=(0, 1, 0))]))
    add(Case("gpt_pmbr_boot_flag_80", "12", "raw", "accepted"),
        lambda p: mbr_image(p, [pte(0x80, 0xEE)]))
    add(Case("mbr_empty_table", "12/20", "raw", "accepted"),
        lambda p: mbr_image(p, []))
    add(Case("gpt_pmbr_bad_lba", "12", "raw", "rejected",
             ("mbr_pmbr_start_lba",)),
        lambda p: mbr_image(p, [pte(0, 0xEE, start=7)]))
    add(Case("mbr_hybrid_policy_strict", "12", "raw", "rejected",
             ("mbr_pmbr_extra_partitions",),
             policy={"mbr_fatal_checks": frozenset(
                 ["boot_flag", "pmbr_extra_partitions"])}),
        lambda p: mbr_image(p, [pte(0, 0xEE), pte(0x80, 0x0C, start=64)]))

    # 13. polyglots, hybrid ISO.
    add(Case("iso", "good", "iso", "accepted"),
        lambda p: write_bytes(p, bytes(iso_bytes())))

    def iso_qcow2(p):
        qcow2(p)
        data = iso_bytes()
        data[:512] = read(p, 0, 512)
        write_bytes(p, bytes(data))
    add(Case("iso_with_qcow2_header", "13", "iso", "rejected",
             ("polyglot",)), iso_qcow2)

    def iso_hybrid(p):
        data = iso_bytes()
        data[446:462] = pte(0, 0xEE)
        data[510:512] = b"\x55\xaa"
        write_bytes(p, bytes(data))
    add(Case("iso_hybrid_gpt", "13/20", "iso", "accepted"), iso_hybrid)

    # 14. claimed vs actual.
    add(Case("qcow2_claimed_raw", "14", "raw", "rejected",
             ("format_mismatch",)), lambda p: qcow2(p))

    def gz_qcow2(p):
        qcow2(os.path.join(tmp, "gz.qcow2"))
        with open(os.path.join(tmp, "gz.qcow2"), "rb") as src, \
                gzip.open(p, "wb") as dst:
            shutil.copyfileobj(src, dst)
    add(Case("gzip_claimed_qcow2", "14", "qcow2", "rejected", ("archive",)),
        gz_qcow2)
    add(Case("iso_claimed_raw", "14", "raw", "rejected", ("format_mismatch",)),
        lambda p: write_bytes(p, bytes(iso_bytes())))
    add(Case("vmdk_claimed_qcow2_corrected", "14", "qcow2", "accepted",
             policy={"mismatch": "correct"},
             note="policy correct: disk_format becomes vmdk"),
        lambda p: vmdk(p))

    # 15. nested images.
    def nested(p, outer, inner_make):
        inner = os.path.join(tmp, "inner.img")
        if os.path.exists(inner):
            os.unlink(inner)
        inner_make(inner)
        with open(inner, "r+b") as f:
            f.truncate(MiB)
        qemu_img("convert", "-f", "raw", "-O", outer, inner, p)
    add(Case("nested_qcow2_backing_in_qcow2", "15", "qcow2", "rejected",
             ("backing_file",)),
        lambda p: nested(p, "qcow2",
                         lambda i: qcow2_backing(i, "/etc/passwd")))
    add(Case("nested_qcow2_data_file_in_vmdk", "15", "vmdk", "rejected",
             ("data_file",)),
        lambda p: nested(p, "vmdk", lambda i: data_file(i)))
    add(Case("nested_clean_qcow2_in_qcow2", "15", "qcow2", "accepted",
             note="recorded as nested_format"),
        lambda p: nested(p, "qcow2", lambda i: qcow2(i)))
    add(Case("nested_policy_reject", "15", "qcow2", "rejected",
             ("nested_image",), policy={"nested": "reject"}),
        lambda p: nested(p, "qcow2", lambda i: qcow2(i)))

    # 13 (probe). Polyglots only qemu's own format probe sees: a valid ISO
    # whose system area holds another format's header or a VMDK text
    # descriptor. oslo's VMDK parser gives up on the non-ASCII byte after
    # the text, qemu's probe does not look past the "version=" line.
    add(Case("iso_with_vmdk_text_abs_extent", "13", "iso", "rejected",
             ("probe_mismatch",), note="qemu would open /etc/passwd as "
             "the flat extent"),
        lambda p: write_bytes(p, in_system_area(
            vmdk_text("/etc/passwd") + b"\xff")))
    add(Case("iso_with_vmdk_text_rel_extent", "13", "iso", "rejected",
             ("probe_mismatch",)),
        lambda p: write_bytes(p, in_system_area(
            vmdk_text("disk-flat.vmdk") + b"\xff")))
    add(Case("iso_with_vmdk3_header", "13", "iso", "rejected",
             ("probe_mismatch",), note="VMDK3 (COWD) magic, unknown to "
             "oslo"),
        lambda p: write_bytes(p, in_system_area(b"COWD" + bytes(60))))
    add(Case("raw_with_vmdk_text", "13", "raw", "rejected",
             ("probe_mismatch",)),
        lambda p: write_bytes(p, vmdk_text("disk-flat.vmdk") + b"\xff",
                              MiB))

    def gpt_vmdk_text(p):
        mbr_image(p, [pte(0, 0xEE)])
        text = vmdk_text("disk-flat.vmdk") + b"\xff"
        assert len(text) <= 446
        patch(p, 0, text)
    add(Case("gpt_with_vmdk_text_boot_code", "13", "raw", "rejected",
             ("probe_mismatch",), note="MBR boot code area is a VMDK "
             "descriptor"), gpt_vmdk_text)
    add(Case("iso_with_parallels_header", "13/foreign", "iso", "rejected",
             ("foreign_format",)),
        lambda p: write_bytes(p, in_system_area(
            b"WithoutFreeSpace" + struct.pack("<I", 2) + bytes(44))))
    add(Case("iso_with_cloop_magic", "13/foreign", "iso", "rejected",
             ("foreign_format",)),
        lambda p: write_bytes(p, in_system_area(CLOOP_V2_MAGIC)))
    # Controls: text that qemu's probe does not take for a descriptor.
    add(Case("raw_text_blank_first_line", "13/20", "raw", "accepted",
             note="an empty first line ends qemu's VMDK text probe"),
        lambda p: write_bytes(p, b"\n" + vmdk_text("disk-flat.vmdk"), MiB))
    add(Case("raw_shell_script", "13/20", "raw", "accepted",
             note="comment lines, then no version= line"),
        lambda p: write_bytes(p, b"#!/bin/sh\n#V1.0 Format\nmodprobe cloop "
                              b"file=$0\n", MiB))

    # Probe order: files two probes score alike (qemu keeps the earlier
    # driver of its list). Every one is refused; they pin the tie order.
    add(Case("probe_tie_qcow2_vdi", "probe", "qcow2", "rejected",
             ("polyglot",)),
        lambda p: write_bytes(p, probe_tie(b"QFI\xfb\0\0\0\x03")))
    add(Case("probe_tie_parallels_vdi", "probe", "vdi", "rejected",
             ("foreign_format",)),
        lambda p: write_bytes(p, probe_tie(b"WithoutFreeSpace\2\0\0\0")))
    add(Case("probe_tie_qed_vdi", "probe", "raw", "rejected",
             ("polyglot",)),
        lambda p: write_bytes(p, probe_tie(b"QED\0")))
    add(Case("probe_tie_vhdx_vdi", "probe", "raw", "rejected",
             ("malformed", "polyglot", "probe_mismatch")),
        lambda p: write_bytes(p, probe_tie(b"vhdxfile")))
    add(Case("probe_tie_vmdk_text_vdi", "probe", "raw", "rejected",
             ("probe_mismatch", "polyglot", "parent_reference",
              "format_mismatch")),
        lambda p: write_bytes(p, probe_tie(b"#" + b"x" * 0x50 +
                                           b"\nversion=1\n")))
    add(Case("probe_tie_cloop_dmg", "probe", "raw", "rejected",
             ("foreign_format",), note=".dmg name: qemu probes dmg"),
        lambda p: write_bytes(p, probe_tie(CLOOP_V2_MAGIC, b"")),
        ext="dmg")

    # Formats qemu opens that Glance has no disk_format for (or, parallels,
    # only as ploop, which this engine does not accept), uploaded as raw.
    add(Case("parallels_as_raw", "foreign", "raw", "rejected",
             ("foreign_format",)),
        lambda p: qemu_img("create", "-q", "-f", "parallels", p, "1M"))

    def parallels_ext_magic(p):
        qemu_img("create", "-q", "-f", "parallels", p, "1M")
        patch(p, 0, b"WithouFreSpacExt")
    add(Case("parallels_ext_magic_as_raw", "foreign", "raw", "rejected",
             ("foreign_format",)), parallels_ext_magic)
    add(Case("qcow1_as_raw", "foreign", "raw", "rejected",
             ("foreign_format",)),
        lambda p: qemu_img("create", "-q", "-f", "qcow", p, "1M"))
    add(Case("bochs_as_raw", "foreign", "raw", "rejected",
             ("foreign_format",)), bochs_image)
    add(Case("cloop_as_raw", "foreign", "raw", "rejected",
             ("foreign_format",)), cloop_image)
    add(Case("dmg_as_raw", "foreign", "raw", "rejected",
             ("foreign_format",), note="qemu's dmg probe only reads the "
             "name; the trailer gives it away"), dmg_image)

    # 16. LUKS allowed: every active key slot bounded, the default
    # qemu-img image accepted with the right virtual size.
    luks_ok = {"allowed_formats": frozenset(["luks", "raw"])}
    add(Case("luks_default_qemu_img", "16", "luks", "accepted",
             policy=luks_ok, note="qemu-img create -f luks, defaults"),
        luks_default)
    add(Case("luks_slot0_iteration_bomb", "16", "luks", "rejected",
             ("resource_limit",), policy=luks_ok),
        lambda p: (luks(p), luks_slot(p, 0, iterations=0xFFFFFFFF)))
    add(Case("luks_slot5_iteration_bomb", "16", "luks", "rejected",
             ("resource_limit",), policy=luks_ok,
             note="a second active slot tried with a wrong passphrase"),
        lambda p: (luks(p), luks_slot(p, 5, active=0x00AC71F3,
                                      iterations=0xFFFFFFFF)))
    add(Case("luks_disabled_slot_big_count", "16", "luks", "accepted",
             policy=luks_ok, note="a disabled slot is never derived"),
        lambda p: (luks(p), luks_slot(p, 5, iterations=0xFFFFFFFF)))
    add(Case("luks_stripes_bomb", "16", "luks", "rejected", ("malformed",),
             policy=luks_ok),
        lambda p: (luks(p), luks_slot(p, 0, stripes=0xFFFFFFFF)))
    add(Case("luks_slot_state_garbage", "16", "luks", "rejected",
             ("malformed",), policy=luks_ok),
        lambda p: (luks(p), luks_slot(p, 2, active=0x12345678)))

    def luks_odd_length(p):
        luks(p)
        with open(p, "r+b") as f:
            f.truncate(os.path.getsize(p) - 100)
    add(Case("luks_odd_length", "16", "luks", "accepted", policy=luks_ok,
             note="qemu counts the last partial sector"), luks_odd_length)

    def luks_payload_past_end(p):
        luks(p)
        patch(p, 104, struct.pack(">I", 0x7FFFFFFF))
    add(Case("luks_payload_past_end", "16", "luks", "rejected",
             ("malformed",), policy=luks_ok), luks_payload_past_end)

    # 15 (probe). Guest data that qemu's probe would read as another
    # format once the image is converted to raw.
    add(Case("nested_parallels_in_qcow2", "15/foreign", "qcow2", "rejected",
             ("foreign_format",)),
        lambda p: nested(p, "qcow2", lambda i: qemu_img(
            "create", "-q", "-f", "parallels", i, "1M")))
    add(Case("nested_vmdk_text_in_qcow2", "15/13", "qcow2", "rejected",
             ("probe_mismatch",)),
        lambda p: nested(p, "qcow2", lambda i: write_bytes(
            i, vmdk_text("/etc/passwd") + b"\xff")))
    # 16. LUKS.
    add(Case("luks_v1_not_allowed", "16", "luks", "rejected",
             ("format_not_allowed",)), luks)

    def luks_v2(p):
        luks(p)
        patch(p, 6, struct.pack(">H", 2))
    add(Case("luks_v2", "16", "luks", "rejected", ("luks_version",),
             policy={"allowed_formats": frozenset(["luks", "raw"])}), luks_v2)

    def luks_bomb(p):
        luks(p)
        patch(p, 168 - 4, struct.pack(">I", 0xFFFFFFF0))
    add(Case("luks_iteration_bomb", "16", "luks", "rejected",
             ("resource_limit",),
             policy={"allowed_formats": frozenset(["luks", "raw"])}),
        luks_bomb)
    add(Case("luks_claimed_raw", "16", "raw", "rejected",
             ("format_mismatch", "format_not_allowed")), luks)

    # 17. resource exhaustion.
    add(Case("qcow2_petabyte", "17", "qcow2", "rejected",
             ("virtual_size_too_large",)), lambda p: qcow2(p, "1P"))
    add(Case("qcow2_ratio", "17", "qcow2", "rejected",
             ("virtual_ratio_too_large",),
             policy={"max_virtual_ratio": 1000.0}),
        lambda p: qcow2(p, "64G"))

    def huge_l1(p):
        qcow2(p)
        patch(p, 36, struct.pack(">I", 0x10000000))
    add(Case("qcow2_huge_l1", "17", "qcow2", "rejected", ("resource_limit",)),
        huge_l1)

    def many_snapshots(p):
        qcow2(p)
        patch(p, 60, struct.pack(">I", 10 ** 6))
    add(Case("qcow2_snapshot_count", "17", "qcow2", "rejected",
             ("resource_limit",)), many_snapshots)

    # 19. non-bare container formats do not skip inspection.
    for container in ("ovf", "compressed", "ova"):
        add(Case("qcow2_backing_container_" + container, "19", "qcow2",
                 "rejected", ("backing_file",), container=container),
            lambda p: qcow2_backing(p, "/etc/passwd"))

    # 20. fixed VHD.
    def fixed_vhd(p):
        raw = os.path.join(tmp, "fixed.raw")
        write_bytes(raw, b"", MiB)
        qemu_img("convert", "-f", "raw", "-O", "vpc", "-o",
                 "subformat=fixed", raw, p)
    add(Case("vhd_fixed", "20", "vhd", "accepted"), fixed_vhd)
    add(Case("vhd_fixed_claimed_raw", "20", "raw", "rejected",
             ("format_mismatch",)), fixed_vhd)

    # 21. host path existence must not show: VMDK extent to existing/missing.
    for label, target in (("existing", "/etc/passwd"),
                          ("missing", "/nonexistent/xyz")):
        add(Case("vmdk_flat_extent_" + label, "21", "vmdk", "rejected",
                 ("vmdk_descriptor_only",)),
            lambda p, t=target: write_bytes(p, (
                '# Disk DescriptorFile\nversion=1\nCID=fffffffe\n'
                'parentCID=ffffffff\ncreateType="monolithicFlat"\n\n'
                'RW 2048 FLAT "%s" 0\n' % t).encode()), ext="vmdk")

    shutil.rmtree(tmp, ignore_errors=True)
    for name in os.listdir(out):
        if name.endswith(".cache"):
            os.unlink(os.path.join(out, name))
    return cases


def generator_digest() -> str:
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def ensure(out: str = DEFAULT_OUT) -> List[Case]:
    """Build the corpus unless ``out`` already holds this generator's.

    Serialised with a lock file in ``out`` so parallel test runs do not
    build it twice at once.
    """
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_locked(out)


def _ensure_locked(out: str) -> List[Case]:
    manifest = os.path.join(out, "manifest.json")
    digest = generator_digest()
    if os.path.exists(manifest):
        with open(manifest) as f:
            data = json.load(f)
        if data.get("digest") == digest and all(
                os.path.exists(c["file"]) for c in data["cases"]):
            return [Case(**{**c, "codes": tuple(c["codes"]),
                            "policy": _policy_from_json(c["policy"])})
                    for c in data["cases"]]
    for name in os.listdir(out):
        if name == ".lock":
            continue
        path = os.path.join(out, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    cases = build(out)
    with open(manifest, "w") as f:
        json.dump({"digest": digest,
                   "cases": [_case_json(c) for c in cases]}, f, indent=1)
    return cases


def _case_json(case: Case) -> dict:
    data = dataclasses.asdict(case)
    data["policy"] = {k: sorted(v) if isinstance(v, (set, frozenset)) else v
                      for k, v in case.policy.items()}
    return data


_SET_FIELDS = ("allowed_formats", "mbr_fatal_checks")


def _policy_from_json(policy: dict) -> dict:
    out = {}
    for k, v in policy.items():
        if k in _SET_FIELDS:
            out[k] = frozenset(v)
        elif isinstance(v, list):
            out[k] = tuple(v)
        else:
            out[k] = v
    return out


def main(argv: List[str]) -> int:
    out = argv[1] if len(argv) > 1 else DEFAULT_OUT
    cases = ensure(out)
    for c in cases:
        print("%-40s %-6s %-9s %s" % (c.name, c.anchor, c.expect,
                                      ",".join(c.codes)))
    print("%d cases in %s" % (len(cases), out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
