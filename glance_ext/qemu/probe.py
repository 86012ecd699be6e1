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

"""What qemu's own format probe would make of a file, computed in Python.

Glance passes ``-f`` to qemu-img, but operator scripts, older nova with
image probing and third-party tools run qemu with no format, and then qemu
guesses: ``find_image_format()`` in qemu's block.c reads the first 2 KiB of
the file (zero-filled past the end; an empty file is raw), asks every block
driver's ``bdrv_probe`` for a score and takes the first driver with the
highest one. A file that this probe reads as another format than the one
Glance stores it as is not what it claims, and the other format can name a
host file as its data (a VMDK text descriptor in an ISO's system area).

Why reproduce the probe instead of asking qemu: qemu cannot be made to
probe without then opening the file with the driver it picked, and that
open follows the references the format carries (VMDK extents, qcow2 data
files, ``json:`` pseudo-protocols with network drivers); no qemu-img option
stops after the probe, and a sandbox that forbids every other open (mount
namespaces, seccomp) is not available to a Glance worker. The probe rules
are a few byte comparisons on the 2 KiB the inspection engine has already
read, so here they cost no I/O and cannot open anything.

The rules and the order are those of qemu 7.2 (Debian qemu-utils
1:7.2+dfsg), written from its block driver sources (block/raw-format.c,
qcow.c, qcow2.c, qed.c, vmdk.c, vpc.c, vhdx.c, vdi.c, parallels.c, bochs.c,
cloop.c, dmg.c, crypto.c + crypto/block-luks.c); no other driver of that
build has a content probe. ``tests/unit/inspection/test_qemu_probe.py``
compares every answer with qemu-img's own (``--trace bdrv_open_common``) on
the corpus and on fuzzed headers.
"""

import dataclasses
import os
import struct
from typing import Callable, Dict, Tuple

# qemu's BLOCK_PROBE_BUF_SIZE: the probe never sees more of the file.
PROBE_BYTES = 2048

_CLOOP_V2_MAGIC = (b"#!/bin/sh\n#V2.0 Format\n"
                   b"modprobe cloop file=$0 && mount -r -t iso9660 "
                   b"/dev/cloop $1\n")
_VMDK_VERSIONS = tuple(b"version=%d" % v for v in (1, 2, 3))


def _c_string_is(buf: bytes, offset: int, text: bytes) -> bool:
    """``strcmp(buf + offset, text) == 0``: the text, then a NUL."""
    end = offset + len(text)
    return buf[offset:end] == text and buf[end:end + 1] == b"\0"


def _raw(buf: bytes, filename: str) -> int:
    # The smallest positive score: raw wins only when nothing else does.
    return 1


def _qcow(buf: bytes, filename: str) -> int:
    magic, version = struct.unpack(">4sI", buf[:8])
    return 100 if magic == b"QFI\xfb" and version == 1 else 0


def _qcow2(buf: bytes, filename: str) -> int:
    magic, version = struct.unpack(">4sI", buf[:8])
    return 100 if magic == b"QFI\xfb" and version >= 2 else 0


def _qed(buf: bytes, filename: str) -> int:
    return 100 if buf[:4] == b"QED\0" else 0


def _vmdk(buf: bytes, filename: str) -> int:
    if buf[:4] in (b"KDMV", b"COWD"):
        return 100
    # A text descriptor: comment lines and lines of spaces may come first;
    # the first other line must be exactly "version=1|2|3" then LF or CRLF.
    p, end = 0, len(buf)
    while p < end:
        c = buf[p:p + 1]
        if c == b"#":
            nl = buf.find(b"\n", p)
            p = end if nl < 0 else nl + 1
            continue
        if c == b" ":
            while p < end and buf[p:p + 1] == b" ":
                p += 1
            if buf[p:p + 1] == b"\r":
                p += 1
            if p >= end or buf[p:p + 1] != b"\n":
                return 0
            p += 1
            continue
        line = buf[p:p + 11]
        for version in _VMDK_VERSIONS:
            if line.startswith(version + b"\n") or \
                    line.startswith(version + b"\r\n"):
                return 100
        return 0
    return 0


def _vpc(buf: bytes, filename: str) -> int:
    return 100 if buf[:8] == b"conectix" else 0


def _vhdx(buf: bytes, filename: str) -> int:
    return 100 if buf[:8] == b"vhdxfile" else 0


def _vdi(buf: bytes, filename: str) -> int:
    (signature,) = struct.unpack("<I", buf[0x40:0x44])
    return 100 if signature == 0xBEDA107F else 0


def _parallels(buf: bytes, filename: str) -> int:
    (version,) = struct.unpack("<I", buf[16:20])
    return 100 if buf[:16] in (b"WithoutFreeSpace", b"WithouFreSpacExt") \
        and version == 2 else 0


def _bochs(buf: bytes, filename: str) -> int:
    (version,) = struct.unpack("<I", buf[64:68])
    return 100 if (_c_string_is(buf, 0, b"Bochs Virtual HD Image")
                   and _c_string_is(buf, 32, b"Redolog")
                   and _c_string_is(buf, 48, b"Growing")
                   and version in (0x00020000, 0x00010000)) else 0


def _cloop(buf: bytes, filename: str) -> int:
    return 2 if buf.startswith(_CLOOP_V2_MAGIC) else 0


def _dmg(buf: bytes, filename: str) -> int:
    # DMG keeps its header at the end of the file: qemu probes the name.
    return 2 if len(filename) > 4 and filename.endswith(".dmg") else 0


def _luks(buf: bytes, filename: str) -> int:
    (version,) = struct.unpack(">H", buf[6:8])
    return 100 if buf[:6] == b"LUKS\xba\xbe" and version == 1 else 0


# qemu walks its driver list head first and keeps the first driver with
# the highest score, so ties go to the earlier entry. The list is built by
# inserting each driver at the head as it registers, i.e. in reverse link
# order. Only drivers that can tie need a fixed place: VDI (magic at 0x40)
# can tie with every driver whose magic is at offset 0, and cloop with dmg;
# the order below is the one qemu-img 7.2 shows on files built to tie
# (glance_ext/testing/corpus.py: probe_tie_*): parallels and qed before
# vdi, vdi before the others, dmg before cloop.
PROBES: Tuple[Tuple[str, Callable[[bytes, str], int]], ...] = (
    ("dmg", _dmg),
    ("parallels", _parallels),
    ("qed", _qed),
    ("vdi", _vdi),
    ("cloop", _cloop),
    ("bochs", _bochs),
    ("vpc", _vpc),
    ("vhdx", _vhdx),
    ("vmdk", _vmdk),
    ("qcow", _qcow),
    ("luks", _luks),
    ("qcow2", _qcow2),
    ("raw", _raw),
)


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """qemu's guess: the driver it would open the file with, and why."""

    driver: str
    score: int
    # Every driver that scored above zero, in probe order.
    scores: Tuple[Tuple[str, int], ...]

    def to_dict(self) -> Dict[str, object]:
        return {"driver": self.driver, "score": self.score,
                "scores": dict(self.scores)}


def probe(head: bytes, file_size: int, filename: str = "") -> ProbeResult:
    """qemu 7.2's probe of a file whose first bytes are ``head``.

    ``head`` must hold at least the first ``min(file_size, PROBE_BYTES)``
    bytes; ``filename`` is the name qemu would be given (only the dmg probe
    looks at it: a ``.dmg`` suffix).
    """
    if file_size == 0:
        return ProbeResult("raw", 1, (("raw", 1),))
    buf = bytes(head[:PROBE_BYTES])
    if len(buf) < min(file_size, PROBE_BYTES):
        raise ValueError("probe needs the first %d bytes of the file"
                         % min(file_size, PROBE_BYTES))
    # qemu reads past the end of a short file as zeros.
    buf += b"\0" * (PROBE_BYTES - len(buf))
    name = os.fsdecode(filename)
    best, best_score, scores = "raw", 0, []
    for driver, rule in PROBES:
        score = rule(buf, name)
        if score > 0:
            scores.append((driver, score))
        if score > best_score:
            best, best_score = driver, score
    return ProbeResult(best, best_score, tuple(scores))
