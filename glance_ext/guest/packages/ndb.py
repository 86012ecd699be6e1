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

"""rpm's ndb ``Packages.db`` (SUSE 15, rpm built with ``--enable-ndb``).

Why hand-written: ndb is rpm's own format and no reader of it exists
outside rpm itself (and Debian's rpm is built without it). The format is
small: a 32-byte header (``RpmP``, version 0, generation, slot pages,
next index) then slot pages of 4096 bytes holding 16-byte slots (``Slot``,
package index, block offset, block count; offset 0 is a free slot), and
blobs at ``offset * 16``: a 16-byte head (``BlbS``, index, time, length),
the header blob, zero padding, and a 12-byte tail (Adler-32 of head, blob
and padding, the length again, ``BlbE``). All little-endian. Every slot
and blob is checked the way rpm checks it, checksum included, so a
damaged database is refused rather than half read.
"""

import struct
import zlib
from typing import List

from glance_ext.guest.packages import InventoryError

DB_MAGIC, SLOT_MAGIC = b"RpmP", b"Slot"
HEAD_MAGIC, TAIL_MAGIC = b"BlbS", b"BlbE"
HEADER_SIZE, SLOT_SIZE, BLOCK, PAGE = 32, 16, 16, 4096
HEAD, TAIL = 16, 12


def _corrupt(path: str, what: str) -> InventoryError:
    return InventoryError("%s is a corrupt ndb rpm database: %s"
                          % (path, what))


def blobs(data: bytes, path: str, max_packages: int) -> List[bytes]:
    if len(data) < HEADER_SIZE or data[:4] != DB_MAGIC:
        raise InventoryError("%s is not an ndb rpm database" % path)
    version, _generation, slot_pages = struct.unpack_from("<III", data, 4)
    if version != 0:
        raise _corrupt(path, "version %d (rpm writes 0)" % version)
    if len(data) % BLOCK:
        raise _corrupt(path, "its size is not a multiple of 16")
    blocks = len(data) // BLOCK
    if slot_pages == 0 or slot_pages * PAGE > len(data):
        raise _corrupt(path, "%d slot pages in %d bytes"
                       % (slot_pages, len(data)))
    first_blob = slot_pages * (PAGE // BLOCK)
    out = []
    for offset in range(HEADER_SIZE, slot_pages * PAGE, SLOT_SIZE):
        magic = data[offset:offset + 4]
        if magic != SLOT_MAGIC:
            raise _corrupt(path, "slot at %d has no Slot magic" % offset)
        index, blkoff, blkcnt = struct.unpack_from("<III", data, offset + 4)
        if blkoff == 0:
            continue
        if index == 0 or blkcnt == 0 or blkoff < first_blob or \
                blkoff + blkcnt > blocks:
            raise _corrupt(path, "slot at %d points to blocks %d+%d"
                           % (offset, blkoff, blkcnt))
        out.append(_blob(data, path, index, blkoff, blkcnt))
        if len(out) > max_packages:
            raise InventoryError("%s lists more than %d packages"
                                 % (path, max_packages))
    return out


def _blob(data: bytes, path: str, index: int, blkoff: int,
          blkcnt: int) -> bytes:
    start, end = blkoff * BLOCK, (blkoff + blkcnt) * BLOCK
    if data[start:start + 4] != HEAD_MAGIC:
        raise _corrupt(path, "package %d: no blob head" % index)
    head_index, _stamp, length = struct.unpack_from("<III", data, start + 4)
    if head_index != index or \
            blkcnt != (HEAD + length + TAIL + BLOCK - 1) // BLOCK:
        raise _corrupt(path, "package %d: the blob head does not match its "
                       "slot" % index)
    adler, tail_length = struct.unpack_from("<II", data, end - TAIL)
    if data[end - 4:end] != TAIL_MAGIC or tail_length != length:
        raise _corrupt(path, "package %d: no blob tail" % index)
    if zlib.adler32(data[start:end - TAIL]) != adler:
        raise _corrupt(path, "package %d: checksum mismatch" % index)
    return data[start + HEAD:start + HEAD + length]
