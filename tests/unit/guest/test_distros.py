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

"""OS identity, architecture, firmware, layout and the Image Guide checks
on realistic guest trees of each distribution family and disk layout."""

import platform

import pytest

from glance_ext.testing.guest import disks
from glance_ext.testing.guest import trees

LINUX = sorted(n for n, s in disks.SPECS.items() if s.distro != "windows")
WINDOWS = sorted(n for n, s in disks.SPECS.items()
                 if s.distro == "windows")
CLEAN = [n for n in LINUX if not disks.SPECS[n].dirty]
DIRTY = [n for n in LINUX if disks.SPECS[n].dirty]
HOST_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64"}.get(
    platform.machine(), platform.machine())


@pytest.mark.parametrize("name", LINUX)
def test_os_identity(inspected, name):
    spec = disks.SPECS[name]
    report = inspected(name)
    assert report.ok, report["error"]
    want = trees.expected_os(spec.distro, spec.version)
    assert report.os["os_type"] == "linux"
    for key, value in want.items():
        assert report.os[key] == value, key
    # The guest binaries are the build machine's: same ELF machine.
    assert report["architecture"] == HOST_ARCH
    assert report["root"]["fs_type"] == spec.root_fs


@pytest.mark.parametrize("name,firmware", [
    ("ubuntu-gpt", "both"),          # ESP loaders + BIOS boot partition
    ("rhel-xfs-gpt", "both"),
    ("debian-mbr", "bios"),          # MBR boot code
    ("centos-ext-boot", "bios"),
    ("fedora-not-last", None),       # GPT, no ESP, no BIOS boot partition
    ("debian-whole-disk", None),     # no partition table at all
])
def test_firmware(inspected, name, firmware):
    report = inspected(name)
    assert report["firmware"] == firmware, report["firmware_evidence"]


def test_gpt_partitions_and_positions(inspected):
    report = inspected("ubuntu-gpt")
    assert report["partition_table"] == "gpt"
    parts = report["partitions"]
    assert [(p["number"], p["type_name"], p["fs_type"]) for p in parts] == [
        (1, "BIOS boot", None), (2, "EFI System", "vfat"),
        (3, "Linux filesystem", "ext4")]
    assert parts[1]["start"] == 2 * disks.MiB
    assert parts[1]["fs_uuid"] == "1A2B-3C4D"
    assert parts[1]["mountpoint"] == "/boot/efi"     # via fstab UUID=
    assert parts[2]["start"] == 18 * disks.MiB
    assert parts[2]["fs_uuid"] == disks.ROOT_UUID
    assert parts[2]["mountpoint"] == "/"
    assert report["root_is_last"] is True
    assert report["root_can_grow"] is True


def test_extended_partition_and_separate_boot(inspected):
    """Root in a logical partition; /boot on p1 found through fstab; the
    grub config that carries console=ttyS0 exists only on /boot."""
    report = inspected("centos-ext-boot")
    assert report["partition_table"] == "mbr"
    parts = {p["number"]: p for p in report["partitions"]}
    assert sorted(parts) == [1, 5]
    assert parts[1]["mountpoint"] == "/boot"
    assert parts[5]["mountpoint"] == "/"
    assert report["root"]["partition"] == 5
    serial = report.check("serial-console")
    assert serial["status"] == "pass"
    assert any("/boot/loader/entries/" in e or "/etc/default/grub" in e
               for e in serial["evidence"])


def test_separate_boot_is_read_from_boot_partition(inspected):
    report = inspected("centos-ext-boot")
    # /boot/grub2/grub.cfg lives on partition 1 only.
    assert report.check("serial-console")["status"] == "pass"
    assert not report["notes"]


def test_root_not_last(inspected):
    report = inspected("fedora-not-last")
    assert report["root_is_last"] is False
    assert report["root_can_grow"] is False
    assert report.check("root-last")["status"] == "fail"
    swap = [p for p in report["partitions"] if p["number"] == 2][0]
    assert swap["fs_type"] == "swap"
    assert not swap["readable"] and swap["error"] is None


def test_root_on_lvm(inspected):
    """/ is /dev/mapper/vg0-root in fstab: an LV inside the PV partition
    written by glance_ext/testing/guest/lvm.py, read through libvslvm."""
    report = inspected("rhel-lvm")
    assert report.os["osinfo_id"] == "rhel9.1"
    assert report["root"]["lv"] == "vg0/root"
    lvs = {p["lv"]: p for p in report["partitions"] if p["lv"]}
    assert sorted(lvs) == ["vg0/root", "vg0/swap"]
    assert lvs["vg0/root"]["mountpoint"] == "/"
    assert lvs["vg0/root"]["size"] == 40 * disks.MiB
    assert lvs["vg0/swap"]["fs_type"] == "swap"
    boot = [p for p in report["partitions"] if p["number"] == 1][0]
    assert boot["mountpoint"] == "/boot"
    # Last on the disk, but an LV does not grow by itself at first boot;
    # growpart is installed, so the Image Guide check passes.
    assert report["root_is_last"] is True
    assert report["root_can_grow"] is False
    check = report.check("root-last")
    assert check["status"] == "pass"
    assert "root is on LVM; growpart present" in check["evidence"]


@pytest.mark.parametrize("name", CLEAN)
def test_clean_images_pass_every_check(inspected, name):
    report = inspected(name)
    assert report.checks, "no checks ran"
    failed = {c["id"]: c["evidence"] for c in report.checks
              if c["status"] != "pass" and c["id"] != "root-last"}
    assert failed == {}


EXPECTED_DIRTY = {"cloud-init", "growpart", "persistent-net",
                  "serial-console", "ssh-host-keys", "machine-id",
                  "firewall", "qemu-guest-agent"}


@pytest.mark.parametrize("name", DIRTY)
def test_dirty_images_fail_the_right_checks(inspected, name):
    report = inspected(name)
    failed = {c["id"] for c in report.checks if c["status"] == "fail"}
    assert failed == EXPECTED_DIRTY
    keys = report.check("ssh-host-keys")
    assert "/etc/ssh/ssh_host_ed25519_key present" in keys["evidence"]
    for c in report.checks:
        assert c["severity"] in ("error", "warning", "info")
        assert c["evidence"]


def test_dirty_suse_pins_hwaddr(inspected):
    ev = inspected("sles-dirty-gpt").check("persistent-net")["evidence"]
    assert "/etc/sysconfig/network/ifcfg-eth0 sets HWADDR" in ev


def test_ssh_enabled_through_guest_symlinks(inspected):
    """The wants link is absolute (/lib/systemd/...) and /lib is itself a
    link to usr/lib: both resolve inside the guest."""
    ssh = inspected("debian-mbr").check("ssh-server")
    assert ssh["status"] == "pass"
    assert "multi-user.target.wants/ssh.service" in ssh["evidence"][1]


def test_bytes_read_is_small(inspected):
    for name in LINUX:
        report = inspected(name)
        assert 0 < report["bytes_read"] <= 4 * disks.MiB, name


def test_text_and_json(inspected):
    import json
    report = inspected("ubuntu-gpt")
    text = report.format_text()
    assert "ubuntu22.04" in text and "firmware:" in text
    assert "PASS    cloud-init" in text
    json.dumps(report.to_dict())


@pytest.mark.parametrize("name,short,build,product", [
    ("win2k22-gpt", "win2k22", 20348, "Windows Server 2022 Datacenter"),
    # Windows 11 still calls itself "Windows 10" in ProductName: the build
    # number decides.
    ("win11-dirty-gpt", "win11", 22631, "Windows 10 Pro")])
def test_windows_identity(inspected, name, short, build, product):
    report = inspected(name)
    assert report.ok, report["error"]
    assert report.os["os_type"] == "windows"
    assert report.os["osinfo_id"] == short
    assert report.os["build"] == build
    assert report.os["product_name"] == product
    assert report.os["version"] == "10.0"
    assert report["architecture"] == "x86_64"      # ntoskrnl.exe PE header
    assert report["firmware"] == "uefi"              # bootmgfw.efi on ESP
    assert report["partition_table"] == "gpt"
    names = [p["type_name"] for p in report["partitions"]]
    assert names == ["EFI System", "Microsoft reserved",
                     "Microsoft basic data"]
    assert report["root"]["fs_type"] == "ntfs"
    assert report["root_is_last"] is True


def test_windows_checks(inspected):
    clean = inspected("win2k22-gpt")
    assert {c["id"]: c["status"] for c in clean.checks} == {
        "cloud-init": "pass", "root-last": "pass"}
    assert "cloudbase-init.conf present" in \
        clean.check("cloud-init")["evidence"][0]
    dirty = inspected("win11-dirty-gpt")
    assert dirty.check("cloud-init")["status"] == "fail"
