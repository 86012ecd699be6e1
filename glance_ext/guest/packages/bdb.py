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

"""rpm's BerkeleyDB ``Packages`` database (EL7, EL8, SUSE 12), read-only.

Why hand-written: the PyPI bindings (``berkeleydb``, ``bsddb3``) need
libdb's C library and headers to build and would hand an untrusted file to
a full database engine with its environment, locking and recovery. rpm
itself has read these files without libdb since 4.16 (its ``bdb_ro``
backend): a hash database is a meta page, bucket pages holding key/value
item pairs, and overflow pages for items too large for a page, which is
every header. This reader walks the bucket chains the same way, from a
bytes copy of the file, with every page number, offset and length checked
and every page visited at most once.

Layout (Berkeley DB's db_page.h): the meta page has the magic 0x061561 at
byte 12 (its byte order gives the file's), version at 16, page size at 20,
last page at 32, max_bucket/high_mask/low_mask at 72/76/80 and 32
``spares`` from 96; a page header is 26 bytes (page number at 8, next page
at 16, item count at 20, free offset at 22, type at 25) followed by the
item offsets (uint16). Hash items: type 1 = data on the page, type 3 =
(page, length) of an overflow chain.
"""

import struct
from typing import List, Set

from glance_ext.guest.packages import InventoryError

HASH_MAGIC = 0x00061561
P_HASH_UNSORTED, P_OVERFLOW, P_HASHMETA, P_HASH = 2, 7, 8, 13
H_KEYDATA, H_OFFPAGE = 1, 3
PAGE_HEADER = 26


class _Db:
    def __init__(self, data: bytes, path: str) -> None:
        self.data, self.path = data, path
        if len(data) < 512:
            raise self.corrupt("shorter than its meta page")
        magic_le = struct.unpack_from("<I", data, 12)[0]
        magic_be = struct.unpack_from(">I", data, 12)[0]
        if magic_le == HASH_MAGIC:
            self.e = "<"
        elif magic_be == HASH_MAGIC:
            self.e = ">"
        else:
            raise InventoryError("%s is not a BerkeleyDB hash database "
                                 "(magic %#x)" % (path, magic_le))
        version, self.pagesize = struct.unpack_from(self.e + "II", data, 16)
        if not 8 <= version <= 10:
            raise self.corrupt("hash version %d is not 8-10" % version)
        if self.pagesize < 512 or self.pagesize > 65536 or \
                self.pagesize & (self.pagesize - 1):
            raise self.corrupt("page size %d" % self.pagesize)
        self.last = struct.unpack_from(self.e + "I", data, 32)[0]
        if (self.last + 1) * self.pagesize > len(data):
            raise self.corrupt("it claims %d pages of %d bytes in %d bytes"
                               % (self.last + 1, self.pagesize, len(data)))
        self.max_bucket = struct.unpack_from(self.e + "I", data, 72)[0]
        if self.max_bucket > self.last:
            raise self.corrupt("%d buckets in %d pages"
                               % (self.max_bucket + 1, self.last + 1))
        self.spares = struct.unpack_from(self.e + "32I", data, 96)
        self.visited: Set[int] = set()

    def corrupt(self, what: str) -> InventoryError:
        return InventoryError("%s is a corrupt BerkeleyDB database: %s"
                              % (self.path, what))

    def page(self, number: int, types) -> int:
        """Offset of page ``number`` after checking it; each page once."""
        if not 0 < number <= self.last:
            raise self.corrupt("page %d is outside the file" % number)
        if number in self.visited:
            raise self.corrupt("page %d is reached twice (a loop)" % number)
        self.visited.add(number)
        base = number * self.pagesize
        if struct.unpack_from(self.e + "I", self.data, base + 8)[0] != number:
            raise self.corrupt("page %d does not say it is" % number)
        if self.data[base + 25] not in types:
            raise self.corrupt("page %d has type %d"
                               % (number, self.data[base + 25]))
        return base

    def u16(self, offset: int) -> int:
        return struct.unpack_from(self.e + "H", self.data, offset)[0]

    def u32(self, offset: int) -> int:
        return struct.unpack_from(self.e + "I", self.data, offset)[0]

    def overflow(self, number: int, length: int) -> bytes:
        if not 0 < length <= len(self.data):
            raise self.corrupt("an overflow item of %d bytes" % length)
        parts, left = [], length
        while left > 0:
            base = self.page(number, (P_OVERFLOW,))
            chunk = self.u16(base + 22)
            if chunk == 0 or chunk > left or \
                    PAGE_HEADER + chunk > self.pagesize:
                raise self.corrupt("overflow page %d holds %d bytes"
                                   % (number, chunk))
            parts.append(self.data[base + PAGE_HEADER:
                                   base + PAGE_HEADER + chunk])
            left -= chunk
            number = self.u32(base + 16)
        return b"".join(parts)

    def item(self, base: int, offset: int, length: int) -> bytes:
        if length < 1 or offset < PAGE_HEADER or \
                offset + length > self.pagesize:
            raise self.corrupt("an item at %d+%d on a page" % (offset,
                                                               length))
        kind = self.data[base + offset]
        if kind == H_KEYDATA:
            return self.data[base + offset + 1:base + offset + length]
        if kind == H_OFFPAGE and length == 12:
            return self.overflow(self.u32(base + offset + 4),
                                 self.u32(base + offset + 8))
        raise self.corrupt("an item of type %d (rpm writes none)" % kind)

    def pairs(self):
        for bucket in range(self.max_bucket + 1):
            number = bucket + self.spares[bucket.bit_length()]
            while number:
                base = self.page(number, (P_HASH, P_HASH_UNSORTED))
                entries = self.u16(base + 20)
                if PAGE_HEADER + 2 * entries > self.pagesize or entries % 2:
                    raise self.corrupt("page %d lists %d items"
                                       % (number, entries))
                offsets = [self.u16(base + PAGE_HEADER + 2 * i)
                           for i in range(entries)]
                for i in range(0, entries, 2):
                    top = self.pagesize if i == 0 else offsets[i - 1]
                    key = self.item(base, offsets[i], top - offsets[i])
                    value = self.item(base, offsets[i + 1],
                                      offsets[i] - offsets[i + 1])
                    yield key, value
                number = self.u32(base + 16)


def values(data: bytes, path: str, max_packages: int) -> List[bytes]:
    """The header blobs of a Packages file (record 0 is rpm's counter)."""
    db = _Db(data, path)
    out = []
    for key, value in db.pairs():
        if len(key) != 4:
            raise db.corrupt("a key of %d bytes (rpm's are 4)" % len(key))
        if struct.unpack(db.e + "I", key)[0] == 0:
            continue
        out.append(value)
        if len(out) > max_packages:
            raise InventoryError("%s lists more than %d packages"
                                 % (path, max_packages))
    return out
