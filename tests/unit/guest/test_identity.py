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

"""OS identity parsing, libosinfo short-ids, ELF architecture, fstab."""

import glob
import os
import platform
import re
import struct

import pytest

from glance_ext.guest import elf
from glance_ext.guest import fstab
from glance_ext.guest import osdetect

OSINFO_DIR = "/usr/share/osinfo/os"


def test_parse_os_release_quoting():
    fields = osdetect.parse_os_release(
        '# comment\nNAME="Red Hat Enterprise Linux"\nID=\'rhel\'\n'
        'VERSION_ID=9.4\nPRETTY_NAME="A \\"quoted\\" name"\nbroken line\n')
    assert fields["NAME"] == "Red Hat Enterprise Linux"
    assert fields["ID"] == "rhel"
    assert fields["VERSION_ID"] == "9.4"
    assert fields["PRETTY_NAME"] == 'A "quoted" name'


@pytest.mark.parametrize("distro,version,name,short", [
    ("ubuntu", "22.04", "Ubuntu", "ubuntu22.04"),
    ("debian", "12", "Debian GNU/Linux", "debian12"),
    ("rhel", "9.4", "Red Hat Enterprise Linux", "rhel9.4"),
    ("rhel", "9", "Red Hat Enterprise Linux", "rhel9.0"),
    ("centos", "9", "CentOS Stream", "centos-stream9"),
    ("centos", "7", "CentOS Linux", "centos7"),
    ("fedora", "40", "Fedora Linux", "fedora40"),
    ("opensuse-leap", "15.5", "openSUSE Leap", "opensuse15.5"),
    ("sles", "15.5", "SLES", "sle15sp5"),
    ("sles", "15", "SLES", "sle15"),
    ("sles", "12.5", "SLES", "sles12sp5"),
    ("rocky", "9.3", "Rocky Linux", "rocky9"),
    ("almalinux", "9.3", "AlmaLinux", "almalinux9"),
    ("unknownos", "1", "X", None),
])
def test_short_id_rules(distro, version, name, short):
    assert osdetect.osinfo_short_id(distro, version, name) == short


def _osinfo_ids():
    ids = set()
    for path in glob.glob(os.path.join(OSINFO_DIR, "*", "*.xml")):
        with open(path, encoding="utf-8") as fh:
            ids.update(re.findall(r"<short-id>([^<]+)</short-id>", fh.read()))
    return ids


@pytest.mark.skipif(not os.path.isdir(OSINFO_DIR),
                    reason="osinfo-db is not installed")
@pytest.mark.parametrize("distro,version,name", [
    # Debian's osinfo-db (2022-11) predates debian12: the rule test above
    # covers it.
    ("ubuntu", "22.04", ""), ("ubuntu", "20.04", ""), ("debian", "11", ""),
    ("debian", "10", ""), ("rhel", "9.1", ""), ("rhel", "8.6", ""),
    ("centos", "9", "CentOS Stream"), ("centos", "8", "CentOS Stream"),
    ("centos", "7", "CentOS Linux"), ("fedora", "37", ""),
    ("opensuse-leap", "15.4", ""), ("sles", "15.4", ""),
    ("sles", "12.5", ""), ("rocky", "9.0", ""), ("almalinux", "9.1", ""),
])
def test_short_ids_exist_in_osinfo_db(distro, version, name):
    """The ids are the ones libosinfo (and so nova) knows."""
    short = osdetect.osinfo_short_id(distro, version, name)
    assert short in _osinfo_ids()


def test_elf_of_host_binaries():
    with open("/bin/sh", "rb") as fh:
        header = fh.read(64)
    want = {"x86_64": "x86_64", "aarch64": "aarch64"}[platform.machine()]
    assert elf.architecture(header) == want


@pytest.mark.parametrize("machine,cls,data,arch", [
    (0x3E, 2, 1, "x86_64"), (0xB7, 2, 1, "aarch64"), (0x03, 1, 1, "i686"),
    (0x15, 2, 1, "ppc64le"), (0x15, 2, 2, "ppc64"), (0x16, 2, 2, "s390x"),
    (0xF3, 2, 1, "riscv64"), (0x9999, 2, 1, None)])
def test_elf_machines(machine, cls, data, arch):
    header = b"\x7fELF" + bytes([cls, data, 1]) + b"\0" * 9
    header += struct.pack("<HH" if data == 1 else ">HH", 2, machine)
    assert elf.architecture(header) == arch


def test_elf_rejects_non_elf():
    assert elf.architecture(b"#!/bin/sh\n" + b"\0" * 60) is None
    assert elf.architecture(b"\x7fELF") is None


def test_fstab_parse_and_match():
    entries = fstab.parse(
        "# c\nUUID=ABCD-1234 /boot/efi vfat umask=0077 0 1\n"
        "LABEL=my\\040root / ext4 defaults 0 1\n/dev/vda3 /srv xfs\n"
        "PARTUUID=1111-2222 /var ext4\nbad\n")
    assert [(e.spec, e.mountpoint) for e in entries] == [
        ("UUID=ABCD-1234", "/boot/efi"), ("LABEL=my root", "/"),
        ("/dev/vda3", "/srv"), ("PARTUUID=1111-2222", "/var")]
    m = fstab.matches
    kw = dict(uuid="abcd-1234", label=None, part_uuid=None, part_label=None,
              number=1)
    assert m("UUID=ABCD-1234", **kw)
    assert m("/dev/disk/by-uuid/abcd-1234", **kw)
    assert not m("UUID=ffff-0000", **kw)
    assert m("/dev/sda1", **kw) and m("/dev/nvme0n1p1", **kw)
    assert not m("/dev/vda2", **kw)
    assert m("LABEL=my root", **dict(kw, label="my root"))
    assert m("PARTUUID=1111-2222", **dict(kw, part_uuid="1111-2222"))
