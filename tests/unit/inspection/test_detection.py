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

"""Detection reads a bounded number of bytes, whatever the image size."""

import os
import subprocess

import pytest

from glance_ext.inspection import detection
from glance_ext.inspection.engine import Engine
from glance_ext.inspection.policy import Policy

GiB = 1024 ** 3


@pytest.mark.parametrize("fmt", ["raw", "qcow2", "vmdk", "vhdx", "vpc"])
def test_read_is_bounded_on_20g_sparse_images(tmp_path, fmt):
    path = str(tmp_path / ("big." + fmt))
    if fmt == "raw":
        with open(path, "wb") as f:
            f.truncate(20 * GiB)
    else:
        subprocess.run(["qemu-img", "create", "-q", "-f", fmt, path, "20G"],
                       check=True)
    limit = 2 * 1024 * 1024
    det = detection.detect(path, read_limit=limit)
    assert det.bytes_read <= limit + detection.TAIL
    report = Engine().inspect(path)
    assert report.accepted, report.to_dict()
    assert report.bytes_read <= limit + detection.TAIL


def test_structures_beyond_the_budget_reject(tmp_path):
    path = str(tmp_path / "d.vhdx")
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", path, "1G"],
                   check=True)
    policy = Policy(read_limit=150 * 1024)
    report = Engine(policy).inspect(path, "vhdx")
    assert report.codes == ["malformed"]
    assert report.bytes_read <= 150 * 1024 + detection.TAIL
    assert report.qemu_ran is False


def test_unknown_data_is_raw(tmp_path):
    path = tmp_path / "noise"
    path.write_bytes(os.urandom(100000))
    report = Engine().inspect(str(path), "raw")
    assert report.detected_format == "raw" and report.accepted


def test_empty_file_is_raw_zero_size(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    report = Engine().inspect(str(path), "raw")
    assert report.detected_format == "raw"
    assert report.virtual_size == 0
