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
  descriptor-only (text) VMDKs, whose extents are other host files.
* VHD/VHDX/VDI: differencing disks reference a parent file; oslo does not
  look. A *fixed* VHD has its footer only at the end, which oslo never sees.
* MBR/GPT: oslo's single ``mbr`` check cannot be relaxed per problem, so
  common non-compliant protective MBRs fail it.
* LUKS: the PBKDF2 iteration count is attacker-chosen CPU time.

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
    text = insp.desc_text or ""
    extents = 0
    for line in (x.strip() for x in text.split("\n")):
        key, _, value = line.partition("=")
        key = key.strip()
        value = value.strip().strip('"')
        if key == "parentcid" and value != "ffffffff":
            report.reject("parent_reference", prefix + "VMDK parent "
                          "(parentCID) reference is not allowed")
        elif key == "parentfilenamehint":
            report.reject("parent_reference", prefix + "VMDK parent file "
                          "name hint is not allowed")
        elif line.split(" ")[0] in ("rw", "rdonly", "noaccess"):
            extents += 1
    if extents > 1:
        report.reject("extent_reference", prefix + "VMDK with %d extents "
                      "references other files" % extents)


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


def check_luks(detection: Detection, policy: Policy, report: Report) -> None:
    insp = detection.inspectors["luks"]
    header = insp.header_items
    if header["version"] == 1 and \
            header["mk_digest_iter"] > policy.luks_max_iterations:
        report.reject("resource_limit", "LUKS key derivation iteration count "
                      "%d exceeds the limit %d"
                      % (header["mk_digest_iter"],
                         policy.luks_max_iterations))


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
