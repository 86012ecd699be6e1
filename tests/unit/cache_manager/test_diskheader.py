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

"""The header reader against disks made by the real qemu-img."""

import os
import subprocess

import pytest

from glance_ext.cache_manager import diskheader


def qemu_img(*args):
    subprocess.run(['qemu-img'] + list(args), check=True,
                   stdout=subprocess.DEVNULL)


def test_qcow2_backing_absolute_and_relative(tmp_path):
    base = tmp_path / 'base'
    base.write_bytes(b'x' * 4096)
    qemu_img('create', '-f', 'qcow2', '-F', 'raw', '-b', str(base),
             str(tmp_path / 'abs'))
    qemu_img('create', '-f', 'qcow2', '-F', 'raw', '-b', 'base',
             str(tmp_path / 'rel'))
    h = diskheader.read_disk_header(str(tmp_path / 'abs'))
    assert (h.fmt, h.references, h.error) == ('qcow2', [str(base)], None)
    assert h.virtual_size == 4096
    assert diskheader.read_disk_header(
        str(tmp_path / 'rel')).references == ['base']


def test_qcow2_v2_and_no_backing(tmp_path):
    qemu_img('create', '-f', 'qcow2', '-o', 'compat=0.10',
             str(tmp_path / 'v2'), '1G')
    qemu_img('create', '-f', 'qcow2', str(tmp_path / 'v3'), '1G')
    for name in ('v2', 'v3'):
        h = diskheader.read_disk_header(str(tmp_path / name))
        assert (h.fmt, h.references, h.error) == ('qcow2', [], None)
        assert h.virtual_size == 1 << 30


def test_qcow2_external_data_file_is_a_reference(tmp_path):
    qemu_img('create', '-f', 'qcow2', '-o',
             'data_file=%s' % (tmp_path / 'data'), str(tmp_path / 'd'),
             '1M')
    h = diskheader.read_disk_header(str(tmp_path / 'd'))
    assert h.references == [str(tmp_path / 'data')]


def test_raw_and_empty_have_no_references(tmp_path):
    (tmp_path / 'raw').write_bytes(os.urandom(8192))
    (tmp_path / 'empty').write_bytes(b'')
    for name in ('raw', 'empty'):
        h = diskheader.read_disk_header(str(tmp_path / name))
        assert (h.fmt, h.references, h.error) == ('raw', [], None)


@pytest.mark.parametrize('fmt', ['vmdk', 'qed', 'vpc', 'vhdx'])
def test_formats_with_parents_are_not_guessed(tmp_path, fmt):
    path = str(tmp_path / ('d.' + fmt))
    qemu_img('create', '-f', fmt, path, '1M')
    h = diskheader.read_disk_header(path)
    assert h.error and fmt in h.fmt


def _qcow2(tmp_path, name='d'):
    path = tmp_path / name
    qemu_img('create', '-f', 'qcow2', '-u', '-F', 'raw', '-b',
             '/somewhere/_base/' + 'a' * 40, str(path), '1G')
    return path


@pytest.mark.parametrize('offset,data,expect', [
    (4, b'\x00\x00\x00\x09', 'version'),
    (16, b'\x00\x0f\xff\xff', 'length'),
    (20, b'\x00\x00\x00\x05', 'cluster_bits'),
    (8, b'\x00\x00\x00\x00\x00\x10\x00\x00', 'first cluster'),
])
def test_corrupt_headers_are_unreadable(tmp_path, offset, data, expect):
    path = _qcow2(tmp_path)
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(data)
    h = diskheader.read_disk_header(str(path))
    assert h.error and expect in h.error, h


def test_truncated_and_nul_in_name(tmp_path):
    path = _qcow2(tmp_path, 't')
    with open(path, 'r+b') as f:
        f.truncate(50)
    assert 'truncated' in diskheader.read_disk_header(str(path)).error
    path = _qcow2(tmp_path, 'n')
    raw = path.read_bytes()
    idx = raw.index(b'/somewhere/')
    with open(path, 'r+b') as f:
        f.seek(idx + 2)
        f.write(b'\0')
    assert 'NUL' in diskheader.read_disk_header(str(path)).error


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        diskheader.read_disk_header(str(tmp_path / 'nope'))
