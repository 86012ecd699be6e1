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

"""Streaming decompression with limits checked while the output grows.

Glance's image_decompression reads the whole member into memory and has
no size or ratio limit, so a bomb fills memory or the staging disk before
anything notices. Here every codec is read through a bounded ``read(n)``,
the output is written sparsely (runs of zeros become holes, so an empty
disk image costs no staging space), and after every chunk the total size,
the ratio to the compressed bytes consumed so far and the free space are
checked: a bomb is refused after at most ``ratio_grace`` bytes plus one
chunk.
"""

import bz2
import dataclasses
import gzip
import io
import lzma
import os
import time
import zipfile
import zlib
from typing import Callable, Iterator, Optional

from oslo_utils import units
import zstandard

from glance_ext.common import sizes
from glance_ext.common import space
from glance_ext.decompression import codecs
from glance_ext.exceptions import DecompressionRefused, InsufficientSpace

CHUNK = 1 * units.Mi
# Compressed bytes read ahead of the decoder: small, so the ratio check
# sees close to what the decoder really consumed.
READ_AHEAD = 64 * units.Ki
_ZEROS = bytes(CHUNK)
SPACE_CHECK_EVERY = 64 * units.Mi


@dataclasses.dataclass(frozen=True)
class Limits:
    max_output: int = 128 * units.Gi
    max_ratio: float = 1000.0
    ratio_grace: int = 64 * units.Mi
    free_space_reserve: int = 256 * units.Mi
    xz_memory_limit: int = 256 * units.Mi
    zstd_max_window: int = 128 * units.Mi


@dataclasses.dataclass
class Result:
    codec: str
    compressed_size: int
    output_size: int
    allocated_bytes: int
    seconds: float
    member: Optional[str] = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _CountingReader(io.RawIOBase):
    """Counts the compressed bytes the decoder has consumed (for the
    ratio check)."""

    def __init__(self, fh) -> None:
        self.fh = fh
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        data = self.fh.read(len(buf))
        n = len(data)
        buf[:n] = data
        self.count += n
        return n


def _xz_chunks(src: _CountingReader, memlimit: int) -> Iterator[bytes]:
    # LZMAFile has no memory limit; a crafted header could ask for a
    # multi-GiB dictionary. The decoder object takes one.
    dec = lzma.LZMADecompressor(memlimit=memlimit)
    pending = b""
    while True:
        if dec.eof:
            rest = dec.unused_data + pending
            pending = b""
            more = rest or src.read(CHUNK)
            if not more:
                return
            if more.strip(b"\0") == b"":   # stream padding
                continue
            dec = lzma.LZMADecompressor(memlimit=memlimit)
            pending = more
        if dec.needs_input:
            data = pending or src.read(CHUNK)
            pending = b""
            if not data:
                raise EOFError("xz stream ended before its end marker")
        else:
            data = b""
        yield dec.decompress(data, max_length=CHUNK)


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def check_zstd_frames(fh, size: int) -> None:
    """Walk the frame and block headers; raise EOFError if the data is
    truncated.

    zstandard's stream reader ends quietly when its input stops in the
    middle of a frame, so a truncated upload would decompress into a
    shorter, silently damaged image. The walk reads only headers (3 bytes
    per block of up to 128 KiB), never the data.
    """
    pos = 0
    while pos < size:
        fh.seek(pos)
        magic = fh.read(4)
        if len(magic) == 4 and 0x184D2A50 <= int.from_bytes(
                magic, "little") <= 0x184D2A5F:      # skippable frame
            length = int.from_bytes(fh.read(4), "little")
            pos += 8 + length
            continue
        if magic != _ZSTD_MAGIC:
            raise EOFError("no zstd frame at byte %d" % pos)
        fh.seek(pos)
        head = fh.read(18)
        try:
            header_size = zstandard.frame_header_size(head)
            has_checksum = zstandard.get_frame_parameters(head).has_checksum
        except zstandard.ZstdError:
            raise EOFError("zstd frame header at byte %d is cut" % pos)
        pos += header_size
        while True:
            fh.seek(pos)
            block = fh.read(3)
            if len(block) < 3:
                raise EOFError("zstd frame ends before its last block")
            value = int.from_bytes(block, "little")
            last, kind, length = value & 1, (value >> 1) & 3, value >> 3
            if kind == 3:
                raise EOFError("reserved zstd block type at byte %d" % pos)
            pos += 3 + (1 if kind == 1 else length)
            if last:
                break
        if has_checksum:
            pos += 4
    if pos != size:
        raise EOFError("zstd data ends inside a frame")
    fh.seek(0)


def _reader_chunks(reader) -> Iterator[bytes]:
    while True:
        data = reader.read(CHUNK)
        if not data:
            return
        yield data


def _zip_member(path: str, limits: Limits):
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise DecompressionRefused("the zip archive is unreadable (%s)"
                                   % str(exc)[:80])
    members = archive.infolist()
    if len(members) != 1:
        archive.close()
        raise DecompressionRefused(
            "the zip archive has %d members; only a zip holding exactly one "
            "image file is accepted" % len(members))
    info = members[0]
    name = info.filename
    if "/" in name or "\\" in name or name in ("", ".", "..") or \
            info.is_dir():
        archive.close()
        raise DecompressionRefused(
            "the zip member name %r contains a path separator; only a "
            "single plain file name is accepted" % name[:80])
    if info.flag_bits & 0x1:
        archive.close()
        raise DecompressionRefused("the zip member is encrypted")
    if info.file_size > limits.max_output:
        archive.close()
        raise DecompressionRefused(
            "the zip member declares %d bytes, over the limit of %d GiB"
            % (info.file_size, limits.max_output // units.Gi))
    if (limits.max_ratio and info.file_size > limits.ratio_grace
            and info.file_size > limits.max_ratio * max(1,
                                                        info.compress_size)):
        archive.close()
        raise DecompressionRefused(
            "the zip member declares a compression ratio of %.0f:1, over the "
            "limit of %g:1 (a likely decompression bomb)"
            % (info.file_size / max(1, info.compress_size), limits.max_ratio))
    return archive, info


def decompress(path: str, codec: str, dst: str, limits: Limits,
               on_progress: Optional[Callable[[int, int], None]] = None
               ) -> Result:
    """Decompress ``path`` (of ``codec``) into ``dst``; raise
    DecompressionRefused. ``dst`` is removed on any failure."""
    start = time.monotonic()
    try:
        return _decompress(path, codec, dst, limits, on_progress, start)
    except BaseException:
        try:
            os.unlink(dst)
        except FileNotFoundError:
            pass
        raise


def _decompress(path, codec, dst, limits, on_progress, start) -> Result:
    compressed_size = os.path.getsize(path)
    member = None
    with open(path, "rb") as raw:
        counting = _CountingReader(raw)
        source = io.BufferedReader(counting, buffer_size=READ_AHEAD)
        archive = None
        if codec == "gzip":
            reader = gzip.GzipFile(fileobj=source, mode="rb")
            chunks = _reader_chunks(reader)
        elif codec == "bzip2":
            reader = bz2.BZ2File(source, mode="rb")
            chunks = _reader_chunks(reader)
        elif codec == "xz":
            chunks = _xz_chunks(counting, limits.xz_memory_limit)
        elif codec == "zstd":
            try:
                check_zstd_frames(raw, compressed_size)
            except EOFError as exc:
                raise DecompressionRefused(
                    "the zstd data is corrupt or truncated (%s)" % exc)
            dctx = zstandard.ZstdDecompressor(
                max_window_size=limits.zstd_max_window)
            reader = dctx.stream_reader(source, read_across_frames=True)
            chunks = _reader_chunks(reader)
        elif codec == "zip":
            archive, info = _zip_member(path, limits)
            member = info.filename
            reader = archive.open(info)
            # The member's compressed bytes: what zipfile has consumed is
            # not exposed, so use the declared compressed size.
            compressed_size = info.compress_size
            chunks = _reader_chunks(reader)
        else:
            raise DecompressionRefused("unknown codec %r" % codec)
        try:
            out_size, allocated = _write_sparse(
                chunks, dst, limits, counting, compressed_size,
                codec == "zip", on_progress)
        except (OSError, EOFError, lzma.LZMAError, zlib.error,
                zstandard.ZstdError, zipfile.BadZipFile) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise
            raise DecompressionRefused(
                "the %s data is corrupt or truncated (%s)"
                % (codec, str(exc)[:100] or type(exc).__name__))
        finally:
            if archive is not None:
                archive.close()
    if out_size == 0:
        raise DecompressionRefused("the %s data decompresses to nothing"
                                   % codec)
    return Result(codec, compressed_size, out_size, allocated,
                  time.monotonic() - start, member)


def _write_sparse(chunks, dst, limits, counting, compressed_size, is_zip,
                  on_progress):
    total = 0
    allocated = 0
    next_space_check = 0
    directory = os.path.dirname(os.path.abspath(dst))
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                 0o640)
    try:
        for data in chunks:
            if not data:
                continue
            n = len(data)
            total += n
            if total > limits.max_output:
                raise DecompressionRefused(
                    "the decompressed data exceeds the limit of %d GiB; "
                    "refused before writing more"
                    % (limits.max_output // units.Gi))
            consumed = compressed_size if is_zip else max(1, counting.count)
            if (limits.max_ratio and total > limits.ratio_grace
                    and total > limits.max_ratio * consumed):
                raise DecompressionRefused(
                    "the data expands more than %g:1 (%d bytes from %d "
                    "compressed bytes so far): refused as a likely "
                    "decompression bomb" % (limits.max_ratio, total,
                                            consumed))
            if data == _ZEROS[:n]:
                os.lseek(fd, n, os.SEEK_CUR)
            else:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                allocated += n
                if allocated >= next_space_check:
                    next_space_check = allocated + SPACE_CHECK_EVERY
                    free = space.free_bytes(directory)
                    if free < limits.free_space_reserve:
                        # The host's limit, not the image's fault.
                        raise InsufficientSpace(
                            "the staging area is nearly full (%s free, %s "
                            "must stay free); refused while decompressing"
                            % (sizes.human(free),
                               sizes.human(limits.free_space_reserve)))
            if on_progress is not None:
                on_progress(total, consumed)
        os.ftruncate(fd, total)
    finally:
        os.close(fd)
    return total, allocated


def detect(path: str) -> Optional[str]:
    return codecs.detect_file(path)
