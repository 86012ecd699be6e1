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

"""What an instance disk points at, read from its header with bounded reads.

Nova finds the backing file of each instance with one ``qemu-img info``
subprocess per disk (and only for the file named ``disk``). A header read in
Python costs two small preads instead of a fork and exec, which is what
makes scanning every disk of every instance directory affordable.

Why hand-written and not oslo.utils format_inspector: the inspector tells
*whether* a qcow2 has a backing file or a data file but not *which file*,
and it reads regions sized by the image itself. Here we need the names, and
every read is capped (header: 4 KiB; backing name: 1023 bytes, qemu's own
limit; at most 64 header extensions inside the first cluster).

Formats that can reference another file but are not parsed here (QED, VMDK,
VHD, VHDX) come back as ``unreadable`` so the caller keeps everything they
might reference. Any other content has no backing file (raw, ISO, LUKS...).
"""

import os
import struct
from typing import List, NamedTuple, Optional

QCOW2_MAGIC = b'QFI\xfb'
HEADER_READ = 4096
MAX_BACKING_NAME = 1023      # qemu: BDRV name limit for backing files
MAX_EXTENSIONS = 64
EXT_END = 0x00000000
EXT_DATA_FILE = 0x44415441
INCOMPAT_DATA_FILE = 1 << 2

# Formats whose files can name another file and that this module does not
# parse; a disk in one of them is kept-everything, never guessed.
_UNPARSED_WITH_PARENTS = (
    (b'QED\x00', 'qed'),
    (b'KDMV', 'vmdk'),
    (b'# Disk DescriptorFile', 'vmdk'),
    (b'vhdxfile', 'vhdx'),
    (b'conectix', 'vpc'),
)


class DiskHeader(NamedTuple):
    """The part of a disk header the cache manager cares about."""
    fmt: str                       # 'qcow2', 'raw' or the unparsed format
    references: List[str]          # backing file and data file, as written
    virtual_size: Optional[int]    # qcow2 only
    error: Optional[str]           # set when the disk must be kept-all


def _unreadable(fmt: str, why: str) -> DiskHeader:
    return DiskHeader(fmt, [], None, why)


def _decode_name(raw: bytes, what: str) -> str:
    if b'\x00' in raw:
        raise ValueError('%s contains a NUL byte' % what)
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError:
        raise ValueError('%s is not valid UTF-8' % what)


def _parse_qcow2(fd: int, head: bytes) -> DiskHeader:
    if len(head) < 72:
        return _unreadable('qcow2', 'qcow2 header truncated (%d bytes)'
                           % len(head))
    (version, backing_offset, backing_size, cluster_bits,
     size) = struct.unpack_from('>IQIIQ', head, 4)
    if version not in (2, 3):
        return _unreadable('qcow2', 'unsupported qcow2 version %d' % version)
    if not 9 <= cluster_bits <= 21:
        return _unreadable('qcow2', 'invalid cluster_bits %d' % cluster_bits)
    cluster_size = 1 << cluster_bits
    refs = []
    if backing_offset:
        if backing_size == 0 or backing_size > MAX_BACKING_NAME:
            return _unreadable('qcow2', 'backing file name length %d out of '
                               'range' % backing_size)
        if backing_offset + backing_size > cluster_size:
            return _unreadable('qcow2', 'backing file name outside the '
                               'first cluster')
        raw = _pread(fd, head, backing_offset, backing_size)
        if len(raw) != backing_size:
            return _unreadable('qcow2', 'backing file name truncated')
        try:
            refs.append(_decode_name(raw, 'backing file name'))
        except ValueError as exc:
            return _unreadable('qcow2', str(exc))
    if version == 3:
        if len(head) < 104:
            return _unreadable('qcow2', 'qcow2 v3 header truncated')
        incompatible = struct.unpack_from('>Q', head, 72)[0]
        header_length = struct.unpack_from('>I', head, 100)[0]
        if header_length < 104 or header_length > cluster_size:
            return _unreadable('qcow2', 'invalid header_length %d'
                               % header_length)
        try:
            data_file = _qcow2_data_file(fd, head, header_length,
                                         cluster_size)
        except ValueError as exc:
            return _unreadable('qcow2', str(exc))
        if incompatible & INCOMPAT_DATA_FILE:
            if data_file is None:
                # The data file is then given only on qemu's command line
                # (libvirt XML); we cannot know it.
                return _unreadable('qcow2', 'external data file not named '
                                   'in the header')
            refs.append(data_file)
    return DiskHeader('qcow2', refs, size, None)


def _qcow2_data_file(fd: int, head: bytes, offset: int,
                     cluster_size: int) -> Optional[str]:
    for _ in range(MAX_EXTENSIONS):
        if offset + 8 > cluster_size:
            raise ValueError('header extensions run past the first cluster')
        ext = _pread(fd, head, offset, 8)
        if len(ext) < 8:
            raise ValueError('header extension truncated')
        ext_type, ext_len = struct.unpack('>II', ext)
        if ext_type == EXT_END:
            return None
        data_offset = offset + 8
        if data_offset + ext_len > cluster_size:
            raise ValueError('header extension past the first cluster')
        if ext_type == EXT_DATA_FILE:
            if ext_len == 0 or ext_len > MAX_BACKING_NAME:
                raise ValueError('data file name length %d out of range'
                                 % ext_len)
            raw = _pread(fd, head, data_offset, ext_len)
            return _decode_name(raw, 'data file name')
        offset = data_offset + ((ext_len + 7) & ~7)
    raise ValueError('more than %d header extensions' % MAX_EXTENSIONS)


def _pread(fd: int, head: bytes, offset: int, length: int) -> bytes:
    """Bytes at offset, from the already-read head when it covers them."""
    if offset + length <= len(head):
        return head[offset:offset + length]
    return os.pread(fd, length, offset)


def read_disk_header(path: str) -> DiskHeader:
    """Read what ``path`` references; never raises for bad content.

    OSError (missing file, permission) is raised so the caller can tell a
    vanished disk (fine) from an unreadable one (keep everything).
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        head = os.pread(fd, HEADER_READ, 0)
        if head.startswith(QCOW2_MAGIC):
            return _parse_qcow2(fd, head)
        for magic, fmt in _UNPARSED_WITH_PARENTS:
            if head.startswith(magic):
                return _unreadable(fmt, '%s disks are not parsed; it may '
                                   'reference a base' % fmt)
        return DiskHeader('raw', [], None, None)
    finally:
        os.close(fd)
