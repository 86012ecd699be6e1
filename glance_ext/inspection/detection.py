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

"""Format detection with oslo.utils' format_inspector, on a bounded read.

oslo's inspectors are written for a sequential stream: a VMDK footer or a
VHDX metadata region far into the file would force reading everything up to
it (for a streamOptimized VMDK, the whole file). This module therefore drives
the same inspectors *by position*: it reads only the byte ranges their
capture regions ask for (plus the file's last bytes) and feeds each region
the matching slice, until every inspector has decided or the read budget is
spent. That positional feeding is the one part written by hand here; the
parsing and the safety checks stay oslo's.

It also records, for the formats with a fixed magic number, whether the
magic was present: oslo drops an inspector that raises while parsing, which
would silently turn a malformed VMDK into "raw". Here a known magic plus a
parse error is reported as a malformed header instead.
"""

import dataclasses
import os
from typing import Dict, IO, List, Optional

from oslo_log import log as logging
from oslo_utils.imageutils import format_inspector as fi
from oslo_utils import units

LOG = logging.getLogger(__name__)

CHUNK = 64 * units.Ki
TAIL = 1536  # a streamOptimized VMDK footer + end-of-stream marker

# (offset, bytes) of the magic numbers of the formats that have one.
MAGIC = {
    "qcow2": (0, b"QFI\xfb"),
    "qed": (0, b"QED\x00"),
    "vmdk": (0, b"KDMV"),
    "vhdx": (0, b"vhdxfile"),
    "vhd": (0, b"conectix"),
    "vdi": (0x40, b"\x7f\x10\xda\xbe"),
    "luks": (0, b"LUKS\xba\xbe"),
}

# Formats that cannot be present without their magic (a VMDK can also be a
# bare text descriptor, so its magic proves presence but not absence).
MAGIC_DECIDES = tuple(n for n in MAGIC if n != "vmdk")

# Compressed or archive data: not a disk image (format_inspector has none).
ARCHIVE_MAGIC = (
    ("gzip", b"\x1f\x8b"),
    ("xz", b"\xfd7zXZ\x00"),
    ("bzip2", b"BZh"),
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("zip", b"PK\x03\x04"),
)


@dataclasses.dataclass
class Detection:
    """What the bounded read found."""

    file_size: int
    bytes_read: int
    head: bytes
    tail: bytes
    inspectors: Dict[str, fi.FileInspector]
    matches: List[fi.FileInspector]
    malformed: Dict[str, str]        # magic present, parser raised
    unreachable: List[str]          # magic present, structures not read
    archive: Optional[str] = None

    def magic(self, name: str) -> bool:
        return has_magic(self.head, name)


def has_magic(head: bytes, name: str) -> bool:
    offset, magic = MAGIC[name]
    return head[offset:offset + len(magic)] == magic


def _regions(inspector: fi.FileInspector) -> Dict[str, fi.CaptureRegion]:
    return {name: inspector.region(name) for name in inspector.context_info}


def _feed_region(region: fi.CaptureRegion, chunk: bytes, start: int) -> None:
    """Give a region the part of ``chunk`` (read at ``start``) it still needs.

    Only a contiguous continuation is fed, so a region never gets a gap.
    """
    if isinstance(region, fi.EndCaptureRegion) or region.complete:
        return
    need = region.offset + len(region.data)
    end = start + len(chunk)
    if start > need or end <= need:
        return
    piece = chunk[need - start:]
    region.capture(piece, need + len(piece))


class _Feeder:
    """Drive a set of inspectors from positional reads of one file."""

    def __init__(self, fobj: IO[bytes], file_size: int, budget: int) -> None:
        self.fobj = fobj
        self.file_size = file_size
        self.budget = budget
        self.bytes_read = 0
        self.errors: Dict[str, Exception] = {}
        self.inspectors = {name: cls() for name, cls in fi.ALL_FORMATS.items()
                           if name != "raw"}
        self.head = b""
        self.not_this_format: set = set()

    def _read(self, offset: int, size: int) -> bytes:
        size = min(size, self.budget - self.bytes_read,
                   self.file_size - offset)
        if size <= 0:
            return b""
        self.fobj.seek(offset)
        data = self.fobj.read(size)
        self.bytes_read += len(data)
        return data

    def live(self) -> Dict[str, fi.FileInspector]:
        return {n: i for n, i in self.inspectors.items()
                if n not in self.errors and n not in self.not_this_format}

    def _needed_offset(self, inspector: fi.FileInspector) -> Optional[int]:
        wants = [r.offset + len(r.data) for r in _regions(inspector).values()
                 if not isinstance(r, fi.EndCaptureRegion) and not r.complete]
        return min(wants) if wants else None

    def feed(self, name: str, chunk: bytes, start: int) -> None:
        inspector = self.inspectors[name]
        try:
            before = _regions(inspector)
            done_before = {n for n, r in before.items() if r.complete}
            for region in before.values():
                _feed_region(region, chunk, start)
            inspector.post_process()
            after = _regions(inspector)
            for new in set(after) - set(before):
                _feed_region(after[new], chunk, start)
            # post_process may chain (VHDX: metadata -> vds); one more pass.
            inspector.post_process()
            for n, region in _regions(inspector).items():
                if region.complete and n not in done_before:
                    inspector.region_complete(n)
        except Exception as exc:  # oslo raises many types on bad input
            LOG.debug("inspector %s gave up: %s", name, exc)
            self.errors[name] = exc

    def run(self) -> None:
        pos_limit = self.file_size
        while self.bytes_read < self.budget:
            offsets = {}
            for name, inspector in self.live().items():
                if name in MAGIC_DECIDES and len(self.head) >= (
                        MAGIC[name][0] + len(MAGIC[name][1])) and \
                        not has_magic(self.head, name):
                    self.not_this_format.add(name)
                    continue
                off = self._needed_offset(inspector)
                if off is not None and off < pos_limit:
                    offsets[name] = off
            if not offsets:
                break
            start = min(offsets.values())
            chunk = self._read(start, CHUNK)
            if not chunk:
                break
            if start == len(self.head) and len(self.head) < CHUNK:
                self.head += chunk[:CHUNK - len(self.head)]
            for name in offsets:
                self.feed(name, chunk, start)

    def feed_tail(self, tail: bytes) -> None:
        """Hand the file's last bytes to end-of-file regions."""
        for name, inspector in self.live().items():
            for region in _regions(inspector).values():
                if isinstance(region, fi.EndCaptureRegion):
                    region.data = b""
                    region.capture(tail, self.file_size)


def detect(path: str, read_limit: int = 2 * units.Mi) -> Detection:
    """Detect the format of ``path`` reading at most about ``read_limit``."""
    with open(path, "rb") as fobj:
        file_size = os.fstat(fobj.fileno()).st_size
        feeder = _Feeder(fobj, file_size, read_limit)
        feeder.run()
        tail_start = max(0, file_size - TAIL)
        if file_size <= len(feeder.head):
            tail = feeder.head[tail_start:]
        else:
            fobj.seek(tail_start)
            tail = fobj.read(TAIL)
            feeder.bytes_read += len(tail)
        feeder.feed_tail(tail)
    return _conclude(feeder, file_size, tail)


def _conclude(feeder: _Feeder, file_size: int, tail: bytes) -> Detection:
    matches = []
    unreachable = []
    malformed = {}
    head = feeder.head
    for name, inspector in feeder.inspectors.items():
        try:
            inspector.finish()
        except Exception:  # finish() only marks regions; be defensive
            pass
        if name in feeder.errors:
            if name in MAGIC and has_magic(head, name):
                malformed[name] = str(feeder.errors[name]) or type(
                    feeder.errors[name]).__name__
            continue
        if name in feeder.not_this_format:
            continue
        try:
            matched = inspector.format_match
            complete = inspector.complete
        except Exception as exc:
            if name in MAGIC and has_magic(head, name):
                malformed[name] = str(exc)
            continue
        if matched and complete:
            matches.append(inspector)
        elif name in MAGIC and has_magic(head, name):
            unreachable.append(name)
    archive = None
    for name, magic in ARCHIVE_MAGIC:
        if head.startswith(magic):
            archive = name
            break
    return Detection(file_size=file_size, bytes_read=feeder.bytes_read,
                     head=head, tail=tail, inspectors=feeder.inspectors,
                     matches=matches, malformed=malformed,
                     unreachable=unreachable, archive=archive)
