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

"""The qemu-img runner against the real qemu-img: limits are enforced, a
timed-out process is killed (not left running), formats go through the map."""

import os
import subprocess

import pytest

from glance_ext.qemu import formats
from glance_ext.qemu import runner


@pytest.fixture
def raw_file(tmp_path):
    path = tmp_path / "disk.raw"
    path.write_bytes(b"")
    os.truncate(path, 1024 * 1024)
    return str(path)


def _bench(qemu, path, limits):
    # A long-running, CPU-consuming qemu-img call (~10M small requests).
    return qemu.run(["bench", "-c", "10000000", "-f", "raw", "-t", "none",
                     path], limits=limits)


def test_timeout_kills_the_process(raw_file):
    qemu = runner.QemuImg()

    with pytest.raises(runner.QemuImgError) as err:
        _bench(qemu, raw_file, runner.Limits(cpu_seconds=60,
                                             timeout_seconds=1))
    assert err.value.kind == "timeout"
    # No qemu-img bench of ours survives.
    out = subprocess.run(["pgrep", "-f", "qemu-img bench -c 10000000 -f raw "
                          "-t none " + raw_file], capture_output=True,
                         text=True)
    assert out.stdout.strip() == "", out.stdout


def test_cpu_limit_is_enforced(raw_file):
    with pytest.raises(runner.QemuImgError) as err:
        _bench(runner.QemuImg(), raw_file,
               runner.Limits(cpu_seconds=1, timeout_seconds=30))
    assert err.value.kind == "limit"


def test_address_space_limit_is_enforced(raw_file):
    with pytest.raises(runner.QemuImgError) as err:
        runner.QemuImg().info(raw_file, "raw", limits=runner.Limits(
            address_space_bytes=16 * 1024 * 1024))
    assert err.value.kind in ("limit", "failed")


def test_missing_binary():
    with pytest.raises(runner.QemuImgError) as err:
        runner.QemuImg("/nonexistent/qemu-img").info("/dev/null", "raw")
    assert err.value.kind in ("missing", "failed")


def test_vhd_goes_to_qemu_as_vpc(tmp_path):
    path = str(tmp_path / "d.vhd")
    subprocess.run(["qemu-img", "create", "-q", "-f", "vpc", path, "1M"],
                   check=True)
    info = runner.QemuImg().info(path, "vhd")
    assert info["format"] == "vpc"
    assert formats.to_glance(info["format"]) == "vhd"


def test_format_map():
    assert formats.to_qemu("vhd") == "vpc"
    assert formats.to_qemu("iso") == "raw"
    assert formats.to_qemu("gpt") == "raw"
    assert formats.to_glance("vpc") == "vhd"
    assert formats.to_glance("qcow2") == "qcow2"
    with pytest.raises(formats.UnknownFormat):
        formats.to_qemu("floppy")


def test_info_measure_check_compare_convert_dd(tmp_path, raw_file):
    qemu = runner.QemuImg()
    dst = str(tmp_path / "out.qcow2")
    qemu.convert(raw_file, "raw", dst, "qcow2", options=["cluster_size=65536"])
    assert qemu.info(dst, "qcow2")["virtual-size"] == 1024 * 1024
    assert qemu.measure(raw_file, "raw", "qcow2")["required"] > 0
    assert qemu.check(dst, "qcow2")["returncode"] == 0
    assert qemu.compare(raw_file, "raw", dst, "qcow2") is True
    head = str(tmp_path / "head.raw")
    qemu.dd_head(dst, "qcow2", head, 65536)
    assert os.path.getsize(head) == 65536


def test_failure_message_does_not_carry_stderr(tmp_path):
    path = str(tmp_path / "not-a-vhd")
    with open(path, "wb") as f:
        f.write(b"x" * 4096)
    with pytest.raises(runner.QemuImgError) as err:
        runner.QemuImg().info(path, "vhd")
    assert err.value.kind == "failed"
    assert path not in str(err.value)
    assert path in err.value.stderr
