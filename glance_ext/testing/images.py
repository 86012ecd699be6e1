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

"""Generate the conversion test images (nothing binary is committed).

Every input the validate plugin accepts, made from one small raw disk with
known data, so a test can prove a conversion kept the guest bytes with
``qemu-img compare``. ``ensure(dir)`` builds them once per directory.

    python -m glance_ext.testing.images OUT_DIR
"""

import dataclasses
import os
import struct
import subprocess
import sys
from typing import Dict, List

from glance_ext.testing.corpus import iso_bytes

MiB = 1024 * 1024
VIRTUAL_SIZE = 4 * MiB


@dataclasses.dataclass(frozen=True)
class Sample:
    name: str
    claimed: str          # disk_format to import with
    qemu_format: str      # qemu driver that opens the file
    path: str
    kept: bool = False    # the default rules keep it as it is (iso)


def qemu_img(*args: str) -> None:
    proc = subprocess.run(["qemu-img"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode:
        raise RuntimeError("qemu-img %s: %s" % (" ".join(args), proc.stdout))


def _pattern_raw(path: str, size: int = VIRTUAL_SIZE) -> None:
    """A sparse raw disk with two distinct written regions."""
    with open(path, "wb") as fh:
        fh.truncate(size)
        fh.seek(MiB)
        fh.write(bytes([0xAB]) * (MiB // 2))
        fh.seek(3 * MiB)
        fh.write(bytes(range(256)) * 1024)


def _mbr_entry(boot: int, ostype: int, start: int, size: int) -> bytes:
    return struct.pack("<B3BB3BII", boot, 0, 2, 0, ostype, 0xFF, 0xFF, 0xFF,
                       start, size)


def _gpt_raw(path: str) -> None:
    _pattern_raw(path)
    sector = bytearray(512)
    sector[446:462] = _mbr_entry(0, 0xEE, 1, VIRTUAL_SIZE // 512 - 1)
    sector[510:512] = b"\x55\xaa"
    with open(path, "r+b") as fh:
        fh.write(bytes(sector))
        fh.write(b"EFI PART" + struct.pack("<I", 0x00010000))


def _hybrid_iso(path: str) -> None:
    data = iso_bytes(VIRTUAL_SIZE)
    data[446:462] = _mbr_entry(0, 0xEE, 1, VIRTUAL_SIZE // 512 - 1)
    data[510:512] = b"\x55\xaa"
    data[MiB:MiB + MiB // 2] = bytes([0xCD]) * (MiB // 2)
    with open(path, "wb") as fh:
        fh.write(bytes(data))


# name -> (claimed disk_format, qemu driver, qemu-img convert args or None)
_CONVERTED = {
    "qcow2": ("qcow2", "qcow2", ["-O", "qcow2"]),
    "qcow2_extended_l2": ("qcow2", "qcow2", [
        "-O", "qcow2", "-o", "extended_l2=on,cluster_size=128k"]),
    "qcow2_zstd": ("qcow2", "qcow2", [
        "-c", "-O", "qcow2", "-o", "compression_type=zstd"]),
    "vmdk_monolithic_sparse": ("vmdk", "vmdk", [
        "-O", "vmdk", "-o", "subformat=monolithicSparse"]),
    "vmdk_stream_optimized": ("vmdk", "vmdk", [
        "-O", "vmdk", "-o", "subformat=streamOptimized"]),
    "vhd_dynamic": ("vhd", "vpc", [
        "-O", "vpc", "-o", "subformat=dynamic,force_size=on"]),
    "vhd_fixed": ("vhd", "vpc", [
        "-O", "vpc", "-o", "subformat=fixed,force_size=on"]),
    "vhdx": ("vhdx", "vhdx", ["-O", "vhdx"]),
    "vdi": ("vdi", "vdi", ["-O", "vdi"]),
}

NAMES = (["raw"] + list(_CONVERTED) + ["gpt_raw", "iso_hybrid_gpt"])


def ensure(out: str) -> Dict[str, Sample]:
    """Build every sample in ``out`` (once) and return them by name."""
    os.makedirs(out, exist_ok=True)
    samples: Dict[str, Sample] = {}
    base = os.path.join(out, "raw.img")
    if not os.path.exists(base):
        _pattern_raw(base + ".tmp")
        os.replace(base + ".tmp", base)
    samples["raw"] = Sample("raw", "raw", "raw", base)
    for name, (claimed, driver, args) in _CONVERTED.items():
        path = os.path.join(out, name + ".img")
        if not os.path.exists(path):
            qemu_img("convert", "-f", "raw", *args, base, path + ".tmp")
            os.replace(path + ".tmp", path)
        samples[name] = Sample(name, claimed, driver, path)
    for name, claimed, make, kept in (("gpt_raw", "raw", _gpt_raw, False),
                                      ("iso_hybrid_gpt", "iso", _hybrid_iso,
                                       True)):
        path = os.path.join(out, name + ".img")
        if not os.path.exists(path):
            make(path + ".tmp")
            os.replace(path + ".tmp", path)
        samples[name] = Sample(name, claimed, "raw", path, kept=kept)
    return samples


def pattern_image(path: str, size_mib: int, fmt: str = "raw") -> str:
    """A larger image of non-zero data (for slow conversions, progress
    and space tests): every byte written, so nothing is sparse."""
    raw = path if fmt == "raw" else path + ".raw"
    if not os.path.exists(path):
        with open(raw, "wb") as fh:
            block = bytes(range(256)) * 4096
            for _ in range(size_mib):
                fh.write(block)
        if fmt != "raw":
            qemu_img("convert", "-f", "raw", "-O", fmt, raw, path)
            os.unlink(raw)
    return path


def split_sources(out: str) -> Dict[str, str]:
    """48 MiB of data in a 64 MiB disk (a hole in the middle), stored
    plain (qcow2) and compressed (zlib qcow2, streamOptimized VMDK): the
    inputs of the split conversion."""
    os.makedirs(out, exist_ok=True)
    raw = os.path.join(out, "split-base.raw")
    if not os.path.exists(raw):
        with open(raw + ".tmp", "wb") as fh:
            block = bytes(range(256)) * 4096
            for i in range(64):
                if 24 <= i < 40:
                    fh.seek(MiB, os.SEEK_CUR)
                else:
                    fh.write(bytes([i]) + block[1:])
            fh.truncate(64 * MiB)
        os.replace(raw + ".tmp", raw)
    found = {"raw": raw}
    for name, args in (("qcow2", ["-O", "qcow2"]),
                       ("qcow2_compressed", ["-c", "-O", "qcow2"]),
                       ("vmdk_stream", ["-O", "vmdk", "-o",
                                        "subformat=streamOptimized"])):
        path = os.path.join(out, "split-%s.img" % name)
        if not os.path.exists(path):
            qemu_img("convert", "-f", "raw", *args, raw, path + ".tmp")
            os.replace(path + ".tmp", path)
        found[name] = path
    return found


def main(argv: List[str]) -> int:
    for sample in ensure(argv[1] if len(argv) > 1 else "conversion-images"
                         ).values():
        print(sample.name, sample.claimed, sample.path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
