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

"""Codec detection and bounded streaming on real compressed data.

Proves: each codec round-trips byte for byte with zero runs left sparse;
bombs are refused after at most the grace size plus a chunk (never after
writing the whole output); truncated/corrupt/multi-member/path-carrying
archives are refused with a specific message; partial output is removed.
"""

import os

import pytest

from glance_ext import exceptions
from glance_ext.decompression import codecs
from glance_ext.decompression import stream
from glance_ext.testing import archives

MiB = archives.MiB
CODECS = ("gzip", "bzip2", "xz", "zstd")


@pytest.fixture(scope="module")
def data():
    return archives.payload()


@pytest.mark.parametrize("codec", CODECS + ("zip",))
def test_roundtrip_sparse(tmp_path, data, codec):
    src = str(tmp_path / "in")
    if codec == "zip":
        archives.make_zip(src, [("disk.img", data)])
    else:
        archives.write(src, archives.compress(codec, data))
    assert codecs.detect_file(src) == codec
    dst = str(tmp_path / "out")
    result = stream.decompress(src, codec, dst, stream.Limits())
    with open(dst, "rb") as fh:
        assert fh.read() == data
    assert result.output_size == len(data)
    # zero runs were not written
    assert os.stat(dst).st_blocks * 512 <= result.allocated_bytes + MiB
    assert result.allocated_bytes < len(data)
    if codec == "zip":
        assert result.member == "disk.img"


def test_multi_member_gzip_and_multi_stream_xz(tmp_path):
    for codec in ("gzip", "xz", "zstd", "bzip2"):
        src = archives.write(str(tmp_path / codec),
                             archives.compress(codec, b"A" * 1000) +
                             archives.compress(codec, b"B" * 1000))
        dst = str(tmp_path / (codec + ".out"))
        stream.decompress(src, codec, dst, stream.Limits())
        with open(dst, "rb") as fh:
            assert fh.read() == b"A" * 1000 + b"B" * 1000, codec


def test_detection_guards_against_raw_disks():
    assert codecs.detect(b"\x1f\x8b\x00" + bytes(13)) is None  # not deflate
    assert codecs.detect(b"BZh9" + bytes(12)) is None           # no block
    assert codecs.detect(b"\xeb\x63\x90" + bytes(13)) is None   # MBR code
    assert codecs.detect(b"QFI\xfb" + bytes(12)) is None        # qcow2
    assert codecs.detect(b"\xfd7zXZ\x00" + bytes(10)) == "xz"


@pytest.mark.parametrize("codec", CODECS + ("zip",))
def test_ratio_bomb_refused_early(tmp_path, codec):
    src = archives.zero_bomb(codec, str(tmp_path / "bomb"), 64 * MiB)
    dst = str(tmp_path / "out")
    limits = stream.Limits(max_ratio=100.0, ratio_grace=4 * MiB)
    seen = []
    with pytest.raises(stream.DecompressionRefused) as err:
        stream.decompress(src, codec, dst, limits,
                          on_progress=lambda total, _: seen.append(total))
    msg = str(err.value)
    assert "bomb" in msg
    assert not os.path.exists(dst)
    if codec == "zip":   # refused from its declared sizes, before writing
        assert not seen
    else:
        # never more than the ratio allows for the input read so far
        # (all of it, at worst) plus one chunk
        bound = max(4 * MiB, 100 * os.path.getsize(src)) + stream.CHUNK
        assert max(seen) <= bound < 64 * MiB


def test_output_size_limit(tmp_path):
    src = archives.zero_bomb("gzip", str(tmp_path / "big.gz"), 32 * MiB)
    limits = stream.Limits(max_output=16 * MiB, max_ratio=0)
    # max_output is in bytes here; the option is in GiB
    with pytest.raises(stream.DecompressionRefused) as err:
        stream.decompress(src, "gzip", str(tmp_path / "o"), limits)
    assert "exceeds the limit" in str(err.value)
    assert not os.path.exists(str(tmp_path / "o"))


def test_space_reserve(tmp_path, data):
    src = archives.write(str(tmp_path / "in"),
                         archives.compress("gzip", data))
    limits = stream.Limits(free_space_reserve=1 << 60)
    with pytest.raises(exceptions.InsufficientSpace) as err:
        stream.decompress(src, "gzip", str(tmp_path / "o"), limits)
    assert "nearly full" in str(err.value)


@pytest.mark.parametrize("codec", CODECS)
def test_truncated(tmp_path, data, codec):
    blob = archives.compress(codec, data)
    src = archives.write(str(tmp_path / "t"), blob[:len(blob) // 2])
    with pytest.raises(stream.DecompressionRefused) as err:
        stream.decompress(src, codec, str(tmp_path / "o"), stream.Limits())
    assert "corrupt or truncated" in str(err.value)
    assert not os.path.exists(str(tmp_path / "o"))


def test_corrupt_gzip(tmp_path, data):
    blob = bytearray(archives.compress("gzip", data))
    mid = len(blob) // 2
    blob[mid:mid + 60] = b"\xff" * 60
    src = archives.write(str(tmp_path / "c"), bytes(blob))
    with pytest.raises(stream.DecompressionRefused):
        stream.decompress(src, "gzip", str(tmp_path / "o"), stream.Limits())


@pytest.mark.parametrize("members,expect", [
    ([("a.img", b"x"), ("b.img", b"y")], "2 members"),
    ([("dir/a.img", b"x")], "path separator"),
    ([("../a.img", b"x")], "path separator"),
    ([("..\\a.img", b"x")], "path separator"),
    ([], "0 members"),
])
def test_bad_zip_members(tmp_path, members, expect):
    src = archives.make_zip(str(tmp_path / "z.zip"), members)
    assert codecs.detect_file(src) == "zip"
    with pytest.raises(stream.DecompressionRefused) as err:
        stream.decompress(src, "zip", str(tmp_path / "o"), stream.Limits())
    assert expect in str(err.value)


def test_unreadable_zip(tmp_path):
    src = archives.write(str(tmp_path / "z"), b"PK\x03\x04" + bytes(100))
    with pytest.raises(stream.DecompressionRefused) as err:
        stream.decompress(src, "zip", str(tmp_path / "o"), stream.Limits())
    assert "unreadable" in str(err.value)


def test_empty_output_refused(tmp_path):
    src = archives.write(str(tmp_path / "e.gz"),
                         archives.compress("gzip", b""))
    with pytest.raises(stream.DecompressionRefused) as err:
        stream.decompress(src, "gzip", str(tmp_path / "o"), stream.Limits())
    assert "nothing" in str(err.value)
