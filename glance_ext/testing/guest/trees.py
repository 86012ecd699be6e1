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

"""Realistic guest root trees for the distributions the engine knows.

Each tree has what the engine and the Image Guide checks look at, laid out
as the distribution does it: os-release, fstab, merged /usr with the
``/bin -> usr/bin`` and ``/lib -> usr/lib`` links, systemd unit files and
the ``*.wants`` links that enable them (absolute targets that only resolve
through the guest's own ``/lib`` link), grub configuration, cloud-init,
udev rules, ifcfg files, and real ELF binaries copied from the build
machine (their ELF header is what the architecture detection reads).
A ``dirty`` tree is one that was never generalised: host keys, a
machine-id, pinned MAC addresses, a firewall, no cloud-init.
"""

import dataclasses
import os
import shutil
from typing import Dict, Optional

# Real ELF executables of the build machine (any Debian has them).
HOST_ELF = ("/usr/bin/dash", "/bin/dash", "/usr/bin/true", "/bin/true")

OS_RELEASE = {
    ("ubuntu", "22.04"): 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\n'
    'VERSION_ID="22.04"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\n'
    'VERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n',
    ("debian", "12"): 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
    'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\n'
    'VERSION_CODENAME=bookworm\nID=debian\n',
    ("rhel", "9.1"): 'NAME="Red Hat Enterprise Linux"\nVERSION="9.1 (Plow)"\n'
    'ID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.1"\nPLATFORM_ID='
    '"platform:el9"\nPRETTY_NAME="Red Hat Enterprise Linux 9.1 (Plow)"\n',
    ("centos", "7"): 'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\n'
    'ID_LIKE="rhel fedora"\nVERSION_ID="7"\nPRETTY_NAME="CentOS Linux 7 '
    '(Core)"\n',
    ("centos", "9"): 'NAME="CentOS Stream"\nVERSION="9"\nID="centos"\n'
    'ID_LIKE="rhel fedora"\nVERSION_ID="9"\nPLATFORM_ID="platform:el9"\n'
    'PRETTY_NAME="CentOS Stream 9"\n',
    ("fedora", "37"): 'NAME="Fedora Linux"\nVERSION="37 (Cloud Edition)"\n'
    'ID=fedora\nVERSION_ID=37\nPRETTY_NAME="Fedora Linux 37 (Cloud '
    'Edition)"\nVARIANT_ID=cloud\n',
    ("opensuse-leap", "15.4"): 'NAME="openSUSE Leap"\nVERSION="15.4"\n'
    'ID="opensuse-leap"\nID_LIKE="suse opensuse"\nVERSION_ID="15.4"\n'
    'PRETTY_NAME="openSUSE Leap 15.4"\n',
    ("sles", "15.4"): 'NAME="SLES"\nVERSION="15-SP4"\nVERSION_ID="15.4"\n'
    'PRETTY_NAME="SUSE Linux Enterprise Server 15 SP4"\nID="sles"\n'
    'ID_LIKE="suse"\n',
}
# The kernel each tree carries (/boot image and /lib/modules tree).
KERNELS = {
    ("ubuntu", "22.04"): "5.15.0-91-generic",
    ("debian", "12"): "6.1.0-18-amd64",
    ("rhel", "9.1"): "5.14.0-162.6.1.el9_1.x86_64",
    ("centos", "7"): "3.10.0-1160.el7.x86_64",
    ("centos", "9"): "5.14.0-362.el9.x86_64",
    ("fedora", "37"): "6.0.7-301.fc37.x86_64",
    ("opensuse-leap", "15.4"): "5.14.21-150400.22-default",
    ("sles", "15.4"): "5.14.21-150400.24.97-default",
}
# Where each tree's rpm database lives, in which format (see pkgdb).
RPMDB = {
    ("rhel", "9.1"): ("/var/lib/rpm", "sqlite", "EL9_RPMS"),
    ("centos", "9"): ("/var/lib/rpm", "sqlite", "EL9_RPMS"),
    ("fedora", "37"): ("/usr/lib/sysimage/rpm", "sqlite", "EL9_RPMS"),
    ("centos", "7"): ("/var/lib/rpm", "bdb", "EL7_RPMS"),
    ("opensuse-leap", "15.4"): ("/usr/lib/sysimage/rpm", "ndb",
                                "SUSE_RPMS"),
    ("sles", "15.4"): ("/usr/lib/sysimage/rpm", "ndb", "SUSE_RPMS"),
}
FAMILY = {"ubuntu": "debian", "debian": "debian", "rhel": "redhat",
          "centos": "redhat", "fedora": "redhat", "opensuse-leap": "suse",
          "sles": "suse"}


@dataclasses.dataclass
class TreeSpec:
    distro: str
    version: str
    dirty: bool = False
    boot_separate: bool = False   # /boot content goes to its own tree
    fstab: str = ""


def host_elf() -> str:
    for path in HOST_ELF:
        if os.path.isfile(path) and not os.path.islink(path):
            return path
    for path in HOST_ELF:
        if os.path.isfile(path):
            return os.path.realpath(path)
    raise RuntimeError("no ELF binary found on the build machine")


def _write(root: str, path: str, text: str, mode: int = 0o644) -> None:
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as fh:
        fh.write(text)
    os.chmod(full, mode)


def _elf(root: str, path: str) -> None:
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    shutil.copyfile(host_elf(), full)
    os.chmod(full, 0o755)


def _link(root: str, path: str, target: str) -> None:
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    os.symlink(target, full)


def _dpkg_status(root: str, spec: TreeSpec) -> None:
    """Debian trees get the build machine's real dpkg status file."""
    from glance_ext.testing.guest import pkgdb
    host = pkgdb.host_dpkg_status()
    if spec.distro == "debian" and host and not spec.dirty:
        os.makedirs(os.path.join(root, "var/lib/dpkg"), exist_ok=True)
        shutil.copyfile(host, os.path.join(root, "var/lib/dpkg/status"))
        return
    # A small one where the build machine has none (and for Ubuntu,
    # whose packages are not Debian's); one removed package whose
    # configuration files are left, which is not installed.
    installed = [("dash", "0.5.12-2"), ("openssh-server", "1:9.2p1-2"),
                 ("systemd", "252.22-1")]
    if not spec.dirty:
        installed.append(("cloud-init", "23.1.1-2"))
    text = "".join("Package: %s\nStatus: install ok installed\n"
                   "Architecture: amd64\nVersion: %s\n\n" % pkg
                   for pkg in installed)
    text += ("Package: removed-tool\nStatus: deinstall ok config-files\n"
             "Architecture: amd64\nVersion: 1.0-1\n\n")
    _write(root, "/var/lib/dpkg/status", text)


def _rpmdb(root: str, spec: TreeSpec) -> None:
    """The tree's rpm database in its release's format (needs rpmbuild)."""
    from glance_ext.testing.guest import pkgdb
    where = RPMDB.get((spec.distro, spec.version))
    if where is None or pkgdb.rpm_missing():
        return
    dbdir, kind, specs = where
    full = os.path.join(root, dbdir.lstrip("/"))
    work = full + ".work"
    sqlite_path = pkgdb.sqlite_rpmdb(work, getattr(pkgdb, specs))
    os.makedirs(full, exist_ok=True)
    if kind == "sqlite":
        for name in ("rpmdb.sqlite", "rpmdb.sqlite-shm", "rpmdb.sqlite-wal"):
            shutil.copyfile(os.path.join(work, name),
                            os.path.join(full, name))
    elif kind == "bdb":
        pkgdb.write_bdb(os.path.join(full, "Packages"),
                        pkgdb.header_blobs(sqlite_path))
    else:
        pkgdb.write_ndb(os.path.join(full, "Packages.db"),
                        [b for _n, b in pkgdb.header_blobs(sqlite_path)])
    shutil.rmtree(work)
    if dbdir != "/var/lib/rpm":
        _link(root, "/var/lib/rpm", "../../usr/lib/sysimage/rpm")
    _rpm_config(root, dbdir, kind)


def _rpm_config(root: str, dbdir: str, kind: str) -> None:
    """The guest's own rpm configuration, as its ``rpm`` package ships it.

    rpm finds its database through the ``%_dbpath`` macro of the system
    it runs on, and tools that run librpm inside the guest (libguestfs
    chroots into it before ``rpmReadConfigFiles``) fail with "no dbpath
    has been set" on a tree without /usr/lib/rpm/rpmrc and macros.  Only
    the lines that locate the database are written: ``%_dbpath`` where
    the release keeps it and ``%_db_backend`` where its rpm names one
    (rpm 4.11 of EL7 has no such macro: Berkeley DB is compiled in).
    """
    _write(root, "/usr/lib/rpm/rpmrc",
           "# rpm's platform table (glance_ext test tree: defaults only)\n")
    base = "/usr" if dbdir.startswith("/usr/") else "/var"
    macros = "%%_usr\t\t/usr\n%%_var\t\t/var\n%%_dbpath\t\t%%{_%s}%s\n" % (
        base.lstrip("/"), dbdir[len(base):])
    if kind != "bdb":
        macros += "%%_db_backend\t%s\n" % kind
    _write(root, "/usr/lib/rpm/macros", macros)


def build(root: str, spec: TreeSpec, boot_root: Optional[str] = None
          ) -> None:
    """Write the guest tree of ``spec`` under ``root`` (and ``boot_root``).

    ``boot_root`` receives what belongs in /boot when /boot is its own
    filesystem (then the root tree has an empty /boot mountpoint).
    """
    family = FAMILY[spec.distro]
    boot = boot_root if spec.boot_separate else os.path.join(root, "boot")
    os.makedirs(boot, exist_ok=True)
    os.makedirs(os.path.join(root, "boot"), exist_ok=True)
    for d in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "var",
              "tmp", "home", "root", "proc", "sys", "dev", "run",
              "boot/efi"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for name in ("bin", "sbin", "lib", "lib64"):
        _link(root, "/" + name, "usr/" + name)
    _write(root, "/usr/lib/os-release", OS_RELEASE[(spec.distro,
                                                    spec.version)])
    _link(root, "/etc/os-release", "../usr/lib/os-release")
    _write(root, "/etc/fstab", spec.fstab)
    _write(root, "/etc/hostname", "localhost\n")
    _write(root, "/etc/machine-id",
           "4c4c4544004d3510804bb4c04f4e3232\n" if spec.dirty else "")
    # Userland: a real ELF shell, reached through /bin -> usr/bin.
    if family == "debian":
        _dpkg_status(root, spec)
        _elf(root, "/usr/bin/dash")
        _link(root, "/usr/bin/sh", "dash")
    else:
        _rpmdb(root, spec)
        _elf(root, "/usr/bin/bash")
        _link(root, "/usr/bin/sh", "bash")
    kernel = KERNELS[(spec.distro, spec.version)]
    _write(boot, "/vmlinuz-" + kernel, "\0" * 512)
    _write(root, "/usr/lib/modules/%s/modules.dep" % kernel, "")
    _elf(root, "/usr/bin/ls")
    _elf(root, "/usr/lib/systemd/systemd")
    _link(root, "/usr/sbin/init", "../lib/systemd/systemd")
    _elf(root, "/usr/lib/systemd/systemd-logind")
    unitdir = "/usr/lib/systemd/system"
    ssh_unit = "ssh.service" if family == "debian" else "sshd.service"
    _write(root, unitdir + "/" + ssh_unit,
           "[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\n"
           "ExecStart=/usr/sbin/sshd -D\n[Install]\n"
           "WantedBy=multi-user.target\n")
    _elf(root, "/usr/sbin/sshd")
    # Absolute target through the guest's own /lib link.
    _link(root, "/etc/systemd/system/multi-user.target.wants/" + ssh_unit,
          "/lib/systemd/system/" + ssh_unit)
    _write(root, "/etc/ssh/sshd_config", "PermitRootLogin no\n"
           "PasswordAuthentication no\n")
    if spec.dirty:
        for kind in ("rsa", "ecdsa", "ed25519"):
            _write(root, "/etc/ssh/ssh_host_%s_key" % kind,
                   "-----BEGIN OPENSSH PRIVATE KEY-----\n", 0o600)
        _write(root, "/etc/udev/rules.d/70-persistent-net.rules",
               '# generated\nSUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*"'
               ', ATTR{address}=="52:54:00:12:34:56", NAME="eth0"\n')
    else:
        _write(root, "/usr/bin/cloud-init",
               "#!/usr/bin/python3\nimport sys\nfrom cloudinit.cmd.main "
               "import main\nsys.exit(main())\n", 0o755)
        _write(root, "/etc/cloud/cloud.cfg",
               "users:\n - default\ndisable_root: true\n"
               "cloud_init_modules:\n - growpart\n - resizefs\n")
        _write(root, unitdir + "/cloud-init.service",
               "[Unit]\nDescription=Cloud-init: Network Stage\n")
        _link(root, "/etc/systemd/system/cloud-init.target.wants/"
              "cloud-init.service", unitdir + "/cloud-init.service")
        _write(root, "/usr/bin/growpart", "#!/bin/sh\n# cloud-utils "
               "growpart\n", 0o755)
        _elf(root, "/usr/bin/qemu-ga")
    cmdline = "root=LABEL=rootfs ro console=tty1" + (
        "" if spec.dirty else " console=ttyS0,115200n8")
    if family == "debian":
        _write(boot, "/grub/grub.cfg",
               "menuentry 'Linux' {\n  linux /vmlinuz %s\n}\n" % cmdline)
        os.makedirs(os.path.join(boot, "grub/i386-pc"), exist_ok=True)
        _write(boot, "/grub/i386-pc/normal.mod", "\0" * 64)
        if not spec.boot_separate:
            _write(root, "/etc/default/grub",
                   'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="%s"\n'
                   % cmdline.split(" ro ", 1)[1])
        if spec.distro == "ubuntu" and not spec.dirty:
            _write(root, "/etc/default/grub.d/50-cloudimg-settings.cfg",
                   'GRUB_CMDLINE_LINUX_DEFAULT="console=tty1 '
                   'console=ttyS0"\n')
        _write(root, "/etc/ufw/ufw.conf",
               "ENABLED=%s\nLOGLEVEL=low\n"
               % ("yes" if spec.dirty else "no"))
    else:
        _write(boot, "/loader/entries/0123456789abcdef-5.14.0.conf",
               "title Linux\nversion 5.14.0\nlinux /vmlinuz-5.14.0\n"
               "options %s\n" % cmdline)
        _write(boot, "/grub2/grub.cfg", "blscfg\n")
        _write(root, "/etc/default/grub",
               'GRUB_CMDLINE_LINUX="%s"\n' % cmdline.split(" ro ", 1)[1])
        ifdir = "/etc/sysconfig/network-scripts" if family == "redhat" \
            else "/etc/sysconfig/network"
        _write(root, ifdir + "/ifcfg-eth0",
               "DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\n" +
               ("HWADDR=52:54:00:12:34:56\n" if spec.dirty else ""))
        if family == "redhat":
            _write(root, "/etc/redhat-release", "Linux release %s\n"
                   % spec.version)
        _write(root, unitdir + "/firewalld.service",
               "[Unit]\nDescription=firewalld\n")
        if spec.dirty:
            _link(root, "/etc/systemd/system/multi-user.target.wants/"
                  "firewalld.service", unitdir + "/firewalld.service")


def expected_os(distro: str, version: str) -> Dict[str, str]:
    """What the engine must report for a tree (independent of the engine's
    own mapping code: written out by hand from the osinfo database)."""
    short = {("ubuntu", "22.04"): "ubuntu22.04", ("debian", "12"): "debian12",
             ("centos", "7"): "centos7",
             ("rhel", "9.1"): "rhel9.1", ("centos", "9"): "centos-stream9",
             ("fedora", "37"): "fedora37",
             ("opensuse-leap", "15.4"): "opensuse15.4",
             ("sles", "15.4"): "sle15sp4"}[(distro, version)]
    return {"distro": distro, "version": version, "osinfo_id": short}


WINDOWS = {
    "win2k22": ("Windows Server 2022 Datacenter", "20348", "Server",
                "ServerDatacenter", "21H2"),
    "win10": ("Windows 10 Pro", "19045", "Client", "Professional", "22H2"),
    "win11": ("Windows 10 Pro", "22631", "Client", "Professional", "23H2"),
}


def pe_stub(machine: int = 0x8664, subsystem: int = 3) -> bytes:
    """A PE32+ header: MZ stub, COFF header, optional header.

    No Windows binary can be taken from the build machine, so this is the
    documented layout (machine, PE32+ magic, subsystem) that the engine,
    and file(1) for libguestfs, read; it has no sections and never runs.
    """
    import struct
    head = bytearray(1024)
    head[0:2] = b"MZ"
    struct.pack_into("<I", head, 60, 128)
    head[128:132] = b"PE\0\0"
    # COFF: machine, sections, time, symtab, nsyms, opt size, flags.
    struct.pack_into("<HHIIIHH", head, 132, machine, 0, 0, 0, 0, 240,
                     0x0022)
    opt = 132 + 20
    struct.pack_into("<H", head, opt, 0x20B)           # PE32+
    struct.pack_into("<Q", head, opt + 24, 0x140000000)  # ImageBase
    struct.pack_into("<II", head, opt + 32, 0x1000, 0x200)  # alignments
    struct.pack_into("<HH", head, opt + 40, 10, 0)     # OS version
    struct.pack_into("<HH", head, opt + 48, 10, 0)     # subsystem version
    struct.pack_into("<II", head, opt + 56, 0x1000, 0x400)  # image/headers
    struct.pack_into("<H", head, opt + 68, subsystem)
    struct.pack_into("<I", head, opt + 108, 16)        # data directories
    return bytes(head)


# Uninstall subkeys of the SOFTWARE hive: (key, DisplayName, version,
# publisher, 32-bit?). The KB entry has no DisplayName: Windows hides it.
WINDOWS_APPS = (
    ("{6D9BA8F0-1E43-4B5C-9A64-D1C3B44E7E5A}", "Cloudbase-Init 1.1.4",
     "1.1.4.0", "Cloudbase Solutions Srl", False),
    ("QEMU-GA", "QEMU guest agent", "107.0.1", "RedHat", False),
    ("Microsoft Edge", "Microsoft Edge", "120.0.2210.91",
     "Microsoft Corporation", True),
    ("KB5034129", None, None, None, False),
)


def windows_apps(dirty: bool = False):
    """(DisplayName, version, publisher) of the programs Windows lists.

    A dirty tree has no Cloudbase-Init; keys without a DisplayName are
    hidden by Windows and must not be listed.
    """
    return sorted((name, version, publisher)
                  for _key, name, version, publisher, _wow in WINDOWS_APPS
                  if name and not (dirty and "Cloudbase" in name))


def build_windows(root: str, short_id: str, dirty: bool = False) -> None:
    """A Windows system volume: SOFTWARE hive, ntoskrnl.exe, and (unless
    ``dirty``) Cloudbase-Init with its configuration."""
    from glance_ext.testing.guest import regf
    product, build, itype, edition, display = WINDOWS[short_id]
    config = os.path.join(root, "Windows", "System32", "config")
    os.makedirs(config, exist_ok=True)
    software = regf.windows_software(product, build, itype, edition,
                                     display)
    for key, name, version, publisher, wow in WINDOWS_APPS:
        if dirty and "Cloudbase" in (name or ""):
            continue
        values = {k: v for k, v in (("DisplayName", name),
                                    ("DisplayVersion", version),
                                    ("Publisher", publisher)) if v}
        values["UninstallString"] = "C:\\Windows\\uninstall.exe"
        base = software.setdefault("WOW6432Node", {}).setdefault(
            "Microsoft", {}) if wow else software["Microsoft"]
        base.setdefault("Windows", {}).setdefault(
            "CurrentVersion", {}).setdefault("Uninstall", {})[key] = values
    regf.write_hive(os.path.join(config, "SOFTWARE"), software)
    regf.write_hive(os.path.join(config, "SYSTEM"), {
        "Select": {"Current": 1, "Default": 1},
        "ControlSet001": {"Control": {"ComputerName": {"ComputerName": {
            "ComputerName": "WIN-GUEST"}}}}})
    for exe, subsystem in (("ntoskrnl.exe", 1), ("cmd.exe", 3)):
        with open(os.path.join(root, "Windows", "System32", exe),
                  "wb") as fh:
            fh.write(pe_stub(subsystem=subsystem))
    os.makedirs(os.path.join(root, "Users", "Public"), exist_ok=True)
    if not dirty:
        conf = os.path.join(root, "Program Files", "Cloudbase Solutions",
                            "Cloudbase-Init", "conf")
        os.makedirs(conf, exist_ok=True)
        with open(os.path.join(conf, "cloudbase-init.conf"), "w") as fh:
            fh.write("[DEFAULT]\nusername=Admin\ngroups=Administrators\n"
                     "metadata_services=cloudbaseinit.metadata.services."
                     "httpservice.HttpService\n")
