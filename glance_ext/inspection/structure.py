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

"""Header checks that oslo's format_inspector does not make, or makes wrong.

Hand-written because each one closes a gap measured against oslo.utils 10.2
(see docs/validate.md):

* qcow2: oslo refuses every incompatible feature bit above 3, which rejects
  valid ``extended_l2`` images; it ignores the header extensions that name
  an external data file or a backing format, the corrupt bit, encryption and
  oversized L1/snapshot tables.
* VMDK: oslo does not look at ``parentCID``/``parentFileNameHint`` and passes
  descriptor-only (text) VMDKs, whose extents are other host files. Its
  descriptor and footer checks are made again here so that the rejection
  says what is wrong in our words (oslo's texts are not passed on).
* VHD/VHDX/VDI: differencing disks reference a parent file; oslo does not
  look. A *fixed* VHD has its footer only at the end, which oslo never sees.
* MBR/GPT: oslo's single ``mbr`` check cannot be relaxed per problem, so
  common non-compliant protective MBRs fail it.
* LUKS: every PBKDF2 iteration count (digest and each active key slot) is
  attacker-chosen CPU time; oslo's virtual size is negative.
* dmg: qemu opens it by a trailer at the end of the file, which no oslo
  inspector knows.

Every function appends to a Report and never raises on malformed input.
"""

import struct
import uuid
from typing import Optional

from glance_ext.inspection.detection import Detection
from glance_ext.inspection.policy import Policy
from glance_ext.inspection.report import Report

QCOW2_INCOMPAT_DIRTY = 1 << 0
QCOW2_INCOMPAT_CORRUPT = 1 << 1
QCOW2_INCOMPAT_DATA_FILE = 1 << 2
QCOW2_INCOMPAT_COMPRESSION = 1 << 3
QCOW2_INCOMPAT_EXTL2 = 1 << 4
QCOW2_INCOMPAT_KNOWN = 0x1F
QCOW2_AUTOCLEAR_DATA_FILE_RAW = 1 << 1
QCOW2_EXT_END = 0x00000000
QCOW2_EXT_BACKING_FORMAT = 0xE2792ACA
QCOW2_EXT_DATA_FILE = 0x44415441
QCOW2_EXT_FDE = 0x0537BE77
QCOW2_MAX_L1_BYTES = 32 * 1024 * 1024    # qemu's QCOW_MAX_L1_SIZE
QCOW2_MAX_SNAPSHOTS = 65536              # qemu's QCOW_MAX_SNAPSHOTS

VHDX_PARENT_LOCATOR = "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"
VHD_FIXED, VHD_DYNAMIC, VHD_DIFFERENCING = 2, 3, 4
VDI_NORMAL, VDI_FIXED = 1, 2

BACKING_MSG = "qcow2 backing file is not allowed"
DATA_FILE_MSG = "qcow2 external data file is not allowed"


def check_qcow2(head: bytes, report: Report, prefix: str = "") -> None:
    if len(head) < 72:
        report.reject("malformed", prefix + "qcow2 header is truncated")
        return
    (_magic, version, bf_offset, bf_size, cluster_bits, _size, crypt,
     l1_size) = struct.unpack(">4sIQIIQII", head[:40])
    (nb_snapshots,) = struct.unpack(">I", head[60:64])
    if version not in (2, 3):
        report.reject("qcow2_version", prefix + "qcow2 version %d is not "
                      "supported (only 2 and 3)" % version)
        return
    if bf_offset or bf_size:
        report.reject("backing_file", prefix + BACKING_MSG)
    if not 9 <= cluster_bits <= 21:
        report.reject("malformed", prefix + "qcow2 cluster size 2^%d is out "
                      "of range" % cluster_bits)
        return
    if crypt:
        report.reject("encrypted", prefix + "encrypted qcow2 images are not "
                      "allowed")
    if l1_size * 8 > QCOW2_MAX_L1_BYTES:
        report.reject("resource_limit", prefix + "qcow2 L1 table of %d "
                      "entries is larger than qemu allows" % l1_size)
    if nb_snapshots > QCOW2_MAX_SNAPSHOTS:
        report.reject("resource_limit", prefix + "qcow2 has %d internal "
                      "snapshots (limit %d)" % (nb_snapshots,
                                                QCOW2_MAX_SNAPSHOTS))
    ext_start = 72
    if version == 3:
        if len(head) < 104:
            report.reject("malformed", prefix + "qcow2 v3 header is truncated")
            return
        incompat, _compat, autoclear, _rorder, header_len = struct.unpack(
            ">QQQII", head[72:104])
        if incompat & ~QCOW2_INCOMPAT_KNOWN:
            report.reject("qcow2_unknown_features", prefix + "qcow2 has "
                          "unknown incompatible feature bits 0x%x"
                          % (incompat & ~QCOW2_INCOMPAT_KNOWN))
        if incompat & QCOW2_INCOMPAT_DATA_FILE or \
                autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW:
            report.reject("data_file", prefix + DATA_FILE_MSG)
        if incompat & QCOW2_INCOMPAT_CORRUPT:
            report.reject("corrupt", prefix + "qcow2 image is marked corrupt")
        if incompat & QCOW2_INCOMPAT_COMPRESSION:
            ctype = head[104] if header_len > 104 and len(head) > 104 else None
            if ctype not in (0, 1):
                report.reject("qcow2_unknown_features", prefix + "qcow2 "
                              "compression type %r is unknown" % ctype)
        if header_len < 104 or header_len % 8:
            report.reject("malformed", prefix + "qcow2 header length %d is "
                          "invalid" % header_len)
            return
        ext_start = header_len
    _check_qcow2_extensions(head, ext_start, 1 << cluster_bits, report,
                            prefix)


def _check_qcow2_extensions(head: bytes, offset: int, cluster: int,
                            report: Report, prefix: str) -> None:
    end = min(cluster, len(head))
    while True:
        if offset + 8 > end:
            report.reject("malformed", prefix + "qcow2 header extensions run "
                          "past the header cluster")
            return
        ext_type, length = struct.unpack(">II", head[offset:offset + 8])
        if ext_type == QCOW2_EXT_END:
            return
        if ext_type == QCOW2_EXT_BACKING_FORMAT:
            report.reject("backing_file", prefix + BACKING_MSG)
        elif ext_type == QCOW2_EXT_DATA_FILE:
            report.reject("data_file", prefix + DATA_FILE_MSG)
        elif ext_type == QCOW2_EXT_FDE:
            report.reject("encrypted", prefix + "encrypted qcow2 images are "
                          "not allowed")
        offset += 8 + ((length + 7) & ~7)


VMDK_GD_AT_END = 0xFFFFFFFFFFFFFFFF
VMDK_MARKER_EOS, VMDK_MARKER_FOOTER = 0, 3
VMDK_EXTENT_ACCESS = ("rw", "rdonly", "noaccess")


def check_vmdk(detection: Detection, policy: Policy, report: Report,
               prefix: str = "") -> None:
    insp = detection.inspectors["vmdk"]
    if not insp.has_region("header"):
        report.reject("vmdk_descriptor_only", prefix + "descriptor-only VMDK "
                      "files name external extent files and are not allowed; "
                      "upload a monolithicSparse or streamOptimized VMDK")
        return
    create_type = getattr(insp, "vmdktype", None)
    if not policy.vmdk_type_allowed(create_type):
        report.reject("vmdk_create_type", prefix + "VMDK createType %r is not "
                      "allowed (allowed: %s)"
                      % (create_type, ", ".join(policy.vmdk_allowed_types)))
    text = insp.desc_text
    if not text:
        report.reject("vmdk_descriptor", prefix + "VMDK has no readable "
                      "descriptor")
        return
    extents = []
    for line in (x.strip() for x in text.split("\n")):
        key, _, value = line.partition("=")
        key = key.strip()
        value = value.strip().strip('"')
        if not line or line.startswith("#") or line.startswith("ddb"):
            continue
        if key == "parentcid" and value != "ffffffff":
            report.reject("parent_reference", prefix + "VMDK parent "
                          "(parentCID) reference is not allowed")
        elif key == "parentfilenamehint":
            report.reject("parent_reference", prefix + "VMDK parent file "
                          "name hint is not allowed")
        elif line.split(" ")[0] in VMDK_EXTENT_ACCESS:
            extents.append(line)
        elif "=" not in line or " " in line.split("=")[0]:
            # Like oslo: a line that is no header field, extent or ddb
            # entry may mean anything to qemu, so it is refused.
            report.reject("vmdk_descriptor", prefix + "VMDK descriptor has "
                          "a line that is neither a header field, an extent "
                          "nor a ddb entry")
    if any("/" in extent for extent in extents):
        report.reject("vmdk_descriptor", prefix + "VMDK extent names a "
                      "path; the data must be in the image file itself")
    if not extents:
        report.reject("vmdk_descriptor", prefix + "VMDK descriptor names no "
                      "extent")
    elif len(extents) > 1:
        report.reject("extent_reference", prefix + "VMDK with %d extents "
                      "references other files" % len(extents))
    if insp.has_region("footer"):
        check_vmdk_footer(insp.region("header").data,
                          insp.region("footer").data, report, prefix)


def check_vmdk_footer(header: bytes, footer: bytes, report: Report,
                      prefix: str = "") -> None:
    """A streamOptimized VMDK whose grain directory is in the footer.

    qemu then trusts the footer instead of the header: it must be a copy of
    the header that points to no further footer, framed by a footer marker
    before it and an end-of-stream marker after it.
    """
    def fields(data: bytes):
        sig, ver, _flags, _cap, _grain, desc_sec, desc_num, _gtes, \
            _rgd, gd = struct.unpack("<4sIIQQQQIQQ", data[:64])
        return sig, ver, (desc_sec, desc_num), gd

    if len(footer) < 1536 or len(header) < 64:
        report.reject("vmdk_footer", prefix + "VMDK streamOptimized footer "
                      "is missing")
        return
    h_sig, h_ver, h_desc, _ = fields(header)
    f_sig, f_ver, f_desc, f_gd = fields(footer[512:1024])
    for what, same in (("signature", h_sig == f_sig),
                       ("version", h_ver == f_ver),
                       ("descriptor location", h_desc == f_desc)):
        if not same:
            report.reject("vmdk_footer", prefix + "VMDK streamOptimized "
                          "footer and header differ in their %s" % what)
    if f_gd == VMDK_GD_AT_END:
        report.reject("vmdk_footer", prefix + "VMDK streamOptimized footer "
                      "points to another footer")
    pad = bytes(496)
    _val, size, kind, rest = struct.unpack("<QII496s", footer[:512])
    if size != 0 or kind != VMDK_MARKER_FOOTER or rest != pad:
        report.reject("vmdk_footer", prefix + "VMDK streamOptimized footer "
                      "marker is invalid")
    val, size, kind, rest = struct.unpack("<QII496s", footer[-512:])
    if val != 0 or size != 0 or kind != VMDK_MARKER_EOS or rest != pad:
        report.reject("vmdk_footer", prefix + "VMDK streamOptimized "
                      "end-of-stream marker is invalid")


def malformed_detail(detection: Detection, name: str) -> str:
    """Why a header with a known magic could not be parsed, in our words.

    oslo's exception texts are not passed on (some are unformatted
    templates, e.g. a literal ``{int(ver)}``); the reason is derived again
    from the bytes for the formats where it can be named.
    """
    head = detection.head
    if name == "vmdk" and head[:4] == b"KDMV" and len(head) >= 44:
        version, = struct.unpack("<I", head[4:8])
        desc_sec, desc_num = struct.unpack("<QQ", head[28:44])
        if version not in (1, 2, 3):
            return "VMDK version %d is not supported (1, 2 or 3)" % version
        if desc_sec != 1:
            return "the VMDK descriptor does not start at sector 1"
        return "the VMDK descriptor of %d sectors cannot be read" % desc_num
    if name == "vhdx":
        insp = detection.inspectors["vhdx"]
        table = insp.region("header").data
        if len(table) >= 16:
            sig, _sum, count = struct.unpack("<III", table[:12])
            if sig != 0x69676572:
                return "the VHDX region table has no signature"
            if count >= 2048:
                return "the VHDX region table has %d entries (limit 2047)" \
                    % count
        if insp.has_region("metadata"):
            meta = insp.region("metadata").data
            if len(meta) >= 12:
                sig, _res, count = struct.unpack("<8sHH", meta[:12])
                if sig != b"metadata":
                    return "the VHDX metadata table has no signature"
                if count >= 2048:
                    return "the VHDX metadata table has %d entries (limit " \
                        "2047)" % count
        return "the VHDX region or metadata table is invalid"
    return "the %s header cannot be parsed" % name


def foreign_format_name(driver: str) -> str:
    """How a rejection names a qemu format Glance cannot store."""
    return {"qcow": "qcow (version 1)"}.get(driver, driver)


def check_vhd_footer(footer: bytes, report: Report, prefix: str = "") -> None:
    (disk_type,) = struct.unpack(">I", footer[60:64])
    if disk_type == VHD_DIFFERENCING:
        report.reject("parent_reference", prefix + "differencing VHD (parent "
                      "reference) is not allowed")
    elif disk_type not in (VHD_FIXED, VHD_DYNAMIC):
        report.reject("malformed", prefix + "VHD disk type %d is invalid"
                      % disk_type)


def fixed_vhd_size(detection: Detection) -> Optional[int]:
    """Virtual size if the file is a valid fixed VHD (footer at the end)."""
    tail = detection.tail
    if len(tail) < 512:
        return None
    footer = tail[-512:]
    if not footer.startswith(b"conectix"):
        return None
    (stored,) = struct.unpack(">I", footer[64:68])
    computed = (~sum(footer[:64] + b"\0\0\0\0" + footer[68:])) & 0xFFFFFFFF
    (disk_type,) = struct.unpack(">I", footer[60:64])
    (current_size,) = struct.unpack(">Q", footer[48:56])
    if stored != computed or disk_type != VHD_FIXED:
        return None
    if detection.file_size != current_size + 512:
        return None
    return current_size


def check_vhdx(detection: Detection, report: Report, prefix: str = "") -> None:
    insp = detection.inspectors["vhdx"]
    if not insp.has_region("metadata"):
        report.reject("malformed", prefix + "VHDX has no metadata region")
        return
    meta = insp.region("metadata").data
    if len(meta) < 32:
        report.reject("malformed", prefix + "VHDX metadata table is truncated")
        return
    (count,) = struct.unpack("<H", meta[10:12])
    if count >= 2048:
        report.reject("malformed", prefix + "VHDX metadata table has %d "
                      "entries (limit 2047)" % count)
        return
    if not insp.has_region("vds") or not insp.region("vds").complete:
        report.reject("malformed", prefix + "VHDX virtual disk size entry is "
                      "missing or out of range")
        return
    for i in range(min(count, (len(meta) - 32) // 32)):
        entry = meta[32 + i * 32:48 + i * 32]
        if str(uuid.UUID(bytes_le=entry)).upper() == VHDX_PARENT_LOCATOR:
            report.reject("parent_reference", prefix + "VHDX parent locator "
                          "(differencing disk) is not allowed")


def check_vdi(head: bytes, report: Report, prefix: str = "") -> None:
    (image_type,) = struct.unpack("<I", head[0x4C:0x50])
    if image_type not in (VDI_NORMAL, VDI_FIXED):
        report.reject("parent_reference", prefix + "VDI image type %d "
                      "(undo/differencing, parent reference) is not allowed"
                      % image_type)


LUKS_KEY_ENABLED = 0x00AC71F3
LUKS_KEY_DISABLED = 0x0000DEAD
LUKS_STRIPES = 4000        # the only anti-forensic stripe count of LUKS1
LUKS_HEADER_BYTES = 592    # 208-byte header + 8 key slots of 48 bytes


def check_luks(detection: Detection, policy: Policy, report: Report) -> None:
    """LUKS1 header: version, the CPU cost of every PBKDF2, slot sanity.

    Unlocking runs PBKDF2 over the master-key digest and over each active
    key slot a wrong passphrase is tried against: every count is
    attacker-chosen CPU time, so each is bounded, not only the digest's.
    """
    head = detection.head
    if len(head) < LUKS_HEADER_BYTES:
        report.reject("malformed", "LUKS header is truncated")
        return
    (version,) = struct.unpack(">H", head[6:8])
    if version != 1:
        report.reject("luks_version", "LUKS version %d is not supported "
                      "(only LUKS1 headers can be checked)" % version)
        return
    (payload_offset,) = struct.unpack(">I", head[104:108])
    (digest_iter,) = struct.unpack(">I", head[164:168])
    limit = policy.luks_max_iterations
    if digest_iter > limit:
        report.reject("resource_limit", "LUKS master key digest uses %d "
                      "PBKDF2 iterations (limit %d)" % (digest_iter, limit))
    for slot in range(8):
        start = 208 + 48 * slot
        active, iterations = struct.unpack(">II", head[start:start + 8])
        (stripes,) = struct.unpack(">I", head[start + 44:start + 48])
        if active == LUKS_KEY_ENABLED:
            if iterations > limit:
                report.reject("resource_limit", "LUKS key slot %d uses %d "
                              "PBKDF2 iterations (limit %d)"
                              % (slot, iterations, limit))
        elif active != LUKS_KEY_DISABLED:
            report.reject("malformed", "LUKS key slot %d is neither "
                          "enabled nor disabled (state 0x%08x)"
                          % (slot, active))
        if stripes != LUKS_STRIPES:
            report.reject("malformed", "LUKS key slot %d has %d "
                          "anti-forensic stripes (LUKS1 uses %d)"
                          % (slot, stripes, LUKS_STRIPES))
    if payload_offset * 512 > _sectors_bytes(detection.file_size):
        report.reject("malformed", "LUKS payload offset lies beyond the end "
                      "of the file")


def _sectors_bytes(size: int) -> int:
    """A file's length as qemu's block layer sees it: whole sectors."""
    return -(-size // 512) * 512


def luks_virtual_size(detection: Detection) -> int:
    """Guest-visible size, as qemu computes it: the file's length in whole
    sectors minus the encrypted payload offset.

    oslo's inspector subtracts the offset from the bytes it was fed, which
    is negative when, as here, only the header was read.
    """
    if len(detection.head) < 108:
        return 0
    (payload_offset,) = struct.unpack(">I", detection.head[104:108])
    return max(0, _sectors_bytes(detection.file_size) - payload_offset * 512)


def dmg_trailer(detection: Detection) -> bool:
    """True when qemu's dmg driver (``-f dmg``) would find a UDIF trailer.

    qemu looks for ``koly`` in the 515 bytes that end 508 bytes before the
    end of the file rounded up to a 512-byte sector, then requires the
    trailer's data fork, resource fork and XML offsets to lie before it and
    one of the two tables to be non-empty. qemu's dmg probe only looks at
    the file name, so only content can tell; the tail the engine reads
    (1.5 KiB) covers that window.
    """
    size = detection.file_size
    if size < 512:
        return False
    rounded = _sectors_bytes(size)
    window_start = rounded - 1023 if rounded > 1023 else 0
    tail_start = size - len(detection.tail)
    if window_start < tail_start:
        return False
    window = detection.tail[window_start - tail_start:
                            window_start - tail_start + 515]
    found = window.find(b"koly")
    if found < 0:
        return False
    koly = window_start + found
    trailer = detection.tail[koly - tail_start:koly - tail_start + 512]
    trailer += b"\0" * (512 - len(trailer))   # qemu reads zeros past EOF
    data_fork, = struct.unpack(">Q", trailer[0x18:0x20])
    rsrc_off, rsrc_len = struct.unpack(">QQ", trailer[0x28:0x38])
    xml_off, xml_len = struct.unpack(">QQ", trailer[0xD8:0xE8])
    (sectors,) = struct.unpack(">q", trailer[0x1EC:0x1F4])
    return (sectors >= 0 and data_fork <= koly and rsrc_off < koly
            and rsrc_len <= koly - rsrc_off and xml_off < koly
            and xml_len <= koly - xml_off and (rsrc_len or xml_len) != 0)


def mbr_problems(head: bytes) -> list:
    """The MBR oddities of a sector ending in 0x55AA, by check name."""
    problems = []
    valid = []
    gpt = False
    for i in range(4):
        pte = head[446 + 16 * i:462 + 16 * i]
        boot, sh, ss, st, ostype, _eh, _es, _et, start_lba, _sz = \
            struct.unpack("<B3BB3BII", pte)
        if boot not in (0x00, 0x80):
            problems.append(("boot_flag", "MBR partition %d has an invalid "
                             "boot flag 0x%02x" % (i, boot)))
        if ostype:
            valid.append(i)
        if ostype == 0xEE:
            gpt = True
            if (sh, ss, st) != (0, 2, 0):
                problems.append(("pmbr_start_chs", "protective MBR has a "
                                 "non-standard start CHS"))
            if start_lba != 1:
                problems.append(("pmbr_start_lba", "protective MBR starts at "
                                 "LBA %d, not 1" % start_lba))
    if gpt and valid != [0] and len(valid) > 1:
        problems.append(("pmbr_extra_partitions", "protective MBR defines "
                         "other partitions too (hybrid MBR)"))
    if not valid:
        problems.append(("no_partitions", "MBR defines no partitions"))
    return problems


def check_mbr(head: bytes, policy: Policy, report: Report) -> None:
    for name, message in mbr_problems(head):
        if name in policy.mbr_fatal_checks:
            report.reject("mbr_" + name, message)
        else:
            report.warn("mbr_" + name, message)
