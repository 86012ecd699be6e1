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

"""Generate compressed test data: each codec, bombs and bad archives."""

import bz2
import gzip
import lzma
import os
import zipfile

import zstandard

MiB = 1024 * 1024


def payload(size: int = 6 * MiB) -> bytes:
    """Image-like data: a zero run (sparse on output), a pattern, noise."""
    rng = bytes((i * 2654435761 >> 13) & 0xFF for i in range(MiB))
    return bytes(2 * MiB) + bytes(range(256)) * (MiB // 256) + rng + \
        bytes(size - 4 * MiB)


def compress(codec: str, data: bytes) -> bytes:
    if codec == "gzip":
        return gzip.compress(data)
    if codec == "bzip2":
        return bz2.compress(data)
    if codec == "xz":
        return lzma.compress(data)
    if codec == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(codec)


def write(path: str, data: bytes) -> str:
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def make_zip(path: str, members) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def zero_bomb(codec: str, path: str, size: int) -> str:
    """``size`` zero bytes compressed, written incrementally so the test
    never holds the bomb's output in memory."""
    block = bytes(MiB)
    if codec == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            with zf.open("disk.img", "w", force_zip64=True) as member:
                for _ in range(size // MiB):
                    member.write(block)
        return path
    opener = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}.get(codec)
    if opener:
        with opener(path, "wb") as fh:
            for _ in range(size // MiB):
                fh.write(block)
        return path
    with open(path, "wb") as raw:
        with zstandard.ZstdCompressor().stream_writer(raw) as fh:
            for _ in range(size // MiB):
                fh.write(block)
    return path


def exists(path: str) -> bool:
    return os.path.exists(path)
