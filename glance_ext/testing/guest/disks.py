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

"""Guest disk images built at test time: filesystems, tables, containers.

Filesystems are made without root or mounting: ext4 with ``mke2fs -d``
(e2fsprogs), XFS with a ``mkfs.xfs -p`` protofile (xfsprogs), FAT with
``mkfs.vfat`` + ``mcopy`` (dosfstools, mtools), swap with ``mkswap``;
partition tables with ``sfdisk`` on the image file (fdisk). The raw disk is
then converted with the real ``qemu-img`` into every container format the
engine reads. Images are cached under a directory keyed by the builder
sources, so a second test run reuses them.
"""

import dataclasses
import hashlib
import os
import shutil
import subprocess
import tempfile
from typing import Dict, List, Optional

from glance_ext.testing.guest import lvm
from glance_ext.testing.guest import trees

MiB = 1024 * 1024
SECTOR = 512
GPT_BIOS = "21686148-6449-6E6F-744E-656564454649"
GPT_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_SWAP = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"

# Container variants: (Glance disk_format, qemu-img convert options).
CONTAINERS = {
    "raw": ("raw", []),
    "qcow2": ("qcow2", []),
    "qcow2-compressed": ("qcow2", ["-c"]),
    "qcow2-zstd": ("qcow2", ["-c", "-o", "compression_type=zstd"]),
    "qcow2-extended-l2": ("qcow2", ["-o", "extended_l2=on,"
                                          "cluster_size=128k"]),
    "vmdk-sparse": ("vmdk", ["-o", "subformat=monolithicSparse"]),
    "vmdk-stream": ("vmdk", ["-o", "subformat=streamOptimized"]),
    "vhd": ("vhd", ["-o", "subformat=dynamic"]),
    "vhdx": ("vhdx", []),
    "vdi": ("vdi", []),
}
_QEMU = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vhd": "vpc",
         "vhdx": "vhdx", "vdi": "vdi"}

ROOT_UUID = "6a1b2c3d-0000-4000-8000-00000000a001"
BOOT_UUID = "6a1b2c3d-0000-4000-8000-00000000b002"
ESP_SERIAL = "1A2B3C4D"          # shown by blkid as 1A2B-3C4D


@dataclasses.dataclass(frozen=True)
class DiskSpec:
    name: str
    distro: str
    version: str
    layout: str                  # mbr, gpt-esp, mbr-extended-boot,
    #                              gpt-root-not-last, whole-disk
    root_fs: str = "ext4"        # ext4 or xfs
    dirty: bool = False
    root_mb: int = 0             # 0: the smallest that fits (40/320 MiB)


def cache_dir() -> str:
    env = os.environ.get("GLANCE_EXT_GUEST_IMAGES")
    if env:
        os.makedirs(env, exist_ok=True)
        return env
    # Keyed by every builder source and every host file the trees copy
    # (the machine's dpkg status): either changing means new images.
    digest = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            with open(os.path.join(here, name), "rb") as fh:
                digest.update(fh.read())
    from glance_ext.testing.guest import pkgdb
    host_status = pkgdb.host_dpkg_status()
    if host_status:
        with open(host_status, "rb") as fh:
            digest.update(fh.read())
    path = os.path.join(tempfile.gettempdir(),
                        "glance-ext-guest-images-" + digest.hexdigest()[:12])
    os.makedirs(path, exist_ok=True)
    return path


def _run(*cmd: str, **kw) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, **kw)


def tool_missing() -> Optional[str]:
    """The first builder tool not installed, or None."""
    for tool in ("mke2fs", "mkfs.vfat", "mcopy", "mmd", "sfdisk", "mkswap",
                 "qemu-img"):
        if shutil.which(tool) is None:
            return tool
    return None


def make_ext4(tree: str, path: str, size: int, uuid: str,
              label: str) -> None:
    with open(path, "wb") as fh:
        fh.truncate(size)
    _run("mke2fs", "-q", "-F", "-t", "ext4", "-U", uuid, "-L", label,
         "-E", "root_owner=0:0", "-d", tree, path)


def _proto_lines(root: str, rel: str, depth: int) -> List[str]:
    lines = []
    base = os.path.join(root, rel)
    for name in sorted(os.listdir(base)):
        full = os.path.join(base, name)
        pad = " " * depth
        if os.path.islink(full):
            lines.append("%s%s l--777 0 0 %s"
                         % (pad, name, os.readlink(full)))
        elif os.path.isdir(full):
            lines.append("%s%s d--755 0 0" % (pad, name))
            lines += _proto_lines(root, os.path.join(rel, name), depth + 1)
            lines.append("%s$" % pad)
        else:
            mode = os.stat(full).st_mode & 0o777
            lines.append("%s%s ---%03o 0 0 %s" % (pad, name, mode, full))
    return lines


def make_xfs(tree: str, path: str, size: int, uuid: str,
             label: str) -> None:
    proto = path + ".proto"
    with open(proto, "w") as fh:
        fh.write("/dummy\n0 0\nd--755 0 0\n")
        fh.write("\n".join(_proto_lines(tree, "", 1)))
        fh.write("\n$\n")
    with open(path, "wb") as fh:
        fh.truncate(size)
    _run("mkfs.xfs", "-q", "-f", "-m", "uuid=%s" % uuid, "-L", label,
         "-p", proto, path)
    os.unlink(proto)


def make_vfat(tree: str, path: str, size: int, serial: str,
              label: str) -> None:
    if os.path.exists(path):
        os.unlink(path)
    _run("mkfs.vfat", "-C", "-i", serial, "-n", label, path,
         str(size // 1024))
    for dirpath, dirnames, filenames in os.walk(tree):
        rel = os.path.relpath(dirpath, tree)
        for d in sorted(dirnames):
            _run("mmd", "-i", path, "::/" + os.path.join(rel, d)
                 .lstrip("./"))
        for f in sorted(filenames):
            _run("mcopy", "-i", path, os.path.join(dirpath, f),
                 "::/" + os.path.join(rel, f).lstrip("./"))


def make_ntfs(tree: str, path: str, size: int, label: str) -> None:
    """NTFS with files: mkntfs, then ntfs-3g (FUSE) to copy the tree in.

    ntfs-3g's tools cannot create directories without mounting; the FUSE
    mount needs /dev/fuse (tests skip when ``ntfs_missing()`` says why).
    """
    with open(path, "wb") as fh:
        fh.truncate(size)
    _run("mkntfs", "-F", "-Q", "-q", "-L", label, path)
    mnt = tempfile.mkdtemp(prefix="ntfs-mnt-", dir=os.path.dirname(path))
    _run("ntfs-3g", path, mnt)
    try:
        for name in os.listdir(tree):
            src = os.path.join(tree, name)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(mnt, name))
            else:
                shutil.copyfile(src, os.path.join(mnt, name))
    finally:
        _run("umount", mnt)
        os.rmdir(mnt)


def ntfs_missing() -> Optional[str]:
    """Why NTFS fixtures cannot be built here, or None."""
    for tool in ("mkntfs", "ntfs-3g"):
        if shutil.which(tool) is None:
            return "%s (ntfs-3g) is not installed" % tool
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing (ntfs-3g needs FUSE)"
    return None


def make_swap(path: str, size: int) -> None:
    with open(path, "wb") as fh:
        fh.truncate(size)
    _run("mkswap", "-q", path)


def _esp_tree(work: str) -> str:
    esp = os.path.join(work, "esp")
    for sub, name in (("BOOT", "BOOTX64.EFI"), ("debian", "grubx64.efi")):
        os.makedirs(os.path.join(esp, "EFI", sub), exist_ok=True)
        with open(os.path.join(esp, "EFI", sub, name), "wb") as fh:
            # A PE header stub: the engine lists loaders, it never runs
            # them.
            fh.write(b"MZ" + b"\0" * 58 + b"\x80\0\0\0" + b"\0" * 64 +
                     b"PE\0\0")
    return esp


def _fstab(spec: DiskSpec) -> str:
    lines = ["# /etc/fstab: static file system information.",
             "LABEL=rootfs / %s defaults 0 1" % spec.root_fs
             if spec.layout == "mbr" else
             "UUID=%s / %s defaults 0 1" % (ROOT_UUID, spec.root_fs)]
    if spec.layout == "gpt-esp":
        lines.append("UUID=1A2B-3C4D /boot/efi vfat umask=0077 0 1")
    if spec.layout in ("mbr-extended-boot", "mbr-lvm"):
        lines.append("UUID=%s /boot ext4 defaults 0 2" % BOOT_UUID)
    if spec.layout == "mbr-lvm":
        lines[1] = "/dev/mapper/vg0-root / %s defaults 0 1" % spec.root_fs
        lines.append("/dev/mapper/vg0-swap none swap defaults 0 0")
    if spec.layout == "gpt-root-not-last":
        lines.append("/dev/vda2 none swap sw 0 0")
    lines.append("tmpfs /tmp tmpfs defaults 0 0")
    return "\n".join(lines) + "\n"


def _mkfs(kind: str, tree: str, path: str, size: int, uuid: str,
          label: str) -> None:
    maker = {"ext4": make_ext4, "xfs": make_xfs}[kind]
    maker(tree, path, size, uuid, label)


def _sfdisk(path: str, script: str) -> None:
    subprocess.run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", path],
                   input=script.encode(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _place(disk: str, offset: int, image: str) -> None:
    """Copy ``image`` into ``disk`` at ``offset``, keeping holes sparse.

    Only the data extents of the (sparse) image are read (SEEK_DATA /
    SEEK_HOLE), so a 20 GiB filesystem with 10 MiB of data copies fast.
    """
    with open(image, "rb") as src, open(disk, "r+b") as dst:
        fd = src.fileno()
        end = os.fstat(fd).st_size
        pos = 0
        while pos < end:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:            # ENXIO: no data after pos
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            src.seek(data)
            while data < hole:
                chunk = src.read(min(MiB, hole - data))
                if chunk.count(0) != len(chunk):
                    dst.seek(offset + data)
                    dst.write(chunk)
                data += len(chunk)
            pos = hole


def build_raw(spec: DiskSpec, out: str) -> None:
    work = tempfile.mkdtemp(prefix="guest-build-", dir=os.path.dirname(out))
    try:
        _build_raw(spec, out, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build_windows(spec: DiskSpec, out: str, work: str) -> None:
    tree = os.path.join(work, "windows")
    trees.build_windows(tree, spec.version, spec.dirty)
    ntfs_img = os.path.join(work, "c.img")
    ntfs_size = 48 * MiB
    make_ntfs(tree, ntfs_img, ntfs_size, "Windows")
    esp_tree = os.path.join(work, "esp")
    for sub in ("Microsoft/Boot", "Boot"):
        os.makedirs(os.path.join(esp_tree, "EFI", sub), exist_ok=True)
    for rel in ("EFI/Microsoft/Boot/bootmgfw.efi", "EFI/Boot/bootx64.efi"):
        with open(os.path.join(esp_tree, rel), "wb") as fh:
            fh.write(trees.pe_stub())
    esp_img = os.path.join(work, "esp.img")
    make_vfat(esp_tree, esp_img, 32 * MiB, ESP_SERIAL, "SYSTEM")
    start = 2048 * SECTOR
    msr_start = start + 32 * MiB
    c_start = msr_start + 16 * MiB
    table = ("label: gpt\nunit: sectors\nfirst-lba: 2048\n"
             "start=%d, size=%d, type=%s, name=\"EFI system partition\"\n"
             "start=%d, size=%d, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE,"
             " name=\"Microsoft reserved partition\"\n"
             "start=%d, size=%d, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7,"
             " name=\"Basic data partition\"\n"
             % (start // SECTOR, 32 * MiB // SECTOR, GPT_ESP,
                msr_start // SECTOR, 16 * MiB // SECTOR,
                c_start // SECTOR, ntfs_size // SECTOR))
    tmp = out + ".tmp"
    with open(tmp, "wb") as fh:
        fh.truncate(c_start + ntfs_size + MiB)
    _sfdisk(tmp, table)
    _place(tmp, start, esp_img)
    _place(tmp, c_start, ntfs_img)
    os.rename(tmp, out)


def _build_raw(spec: DiskSpec, out: str, work: str) -> None:
    if spec.distro == "windows":
        _build_windows(spec, out, work)
        return
    root_tree = os.path.join(work, "root")
    boot_tree = os.path.join(work, "boot")
    tspec = trees.TreeSpec(spec.distro, spec.version, spec.dirty,
                           boot_separate=spec.layout in (
                               "mbr-extended-boot", "mbr-lvm"),
                           fstab=_fstab(spec))
    trees.build(root_tree, tspec, boot_tree)
    root_size = spec.root_mb * MiB or (
        320 * MiB if spec.root_fs == "xfs" else 40 * MiB)
    root_img = os.path.join(work, "root.img")
    _mkfs(spec.root_fs, root_tree, root_img, root_size, ROOT_UUID, "rootfs")
    start = 2048 * SECTOR
    parts: List[Dict] = []   # offset, image
    if spec.layout == "whole-disk":
        os.rename(root_img, out)
        return
    if spec.layout == "mbr":
        table = ("label: dos\nlabel-id: 0x5eed0001\nunit: sectors\n"
                 "start=2048, size=%d, type=83, bootable\n"
                 % (root_size // SECTOR))
        parts.append((start, root_img))
        total = start + root_size + MiB
    elif spec.layout == "gpt-esp":
        esp_img = os.path.join(work, "esp.img")
        make_vfat(_esp_tree(work), esp_img, 16 * MiB, ESP_SERIAL, "ESP")
        bios_start, esp_start = start, start + MiB
        root_start = esp_start + 16 * MiB
        table = ("label: gpt\nunit: sectors\nfirst-lba: 2048\n"
                 "start=%d, size=2048, type=%s, name=bios\n"
                 "start=%d, size=%d, type=%s, name=esp\n"
                 "start=%d, size=%d, type=%s, name=root\n"
                 % (bios_start // SECTOR, GPT_BIOS,
                    esp_start // SECTOR, 16 * MiB // SECTOR, GPT_ESP,
                    root_start // SECTOR, root_size // SECTOR, GPT_LINUX))
        parts += [(esp_start, esp_img), (root_start, root_img)]
        total = root_start + root_size + MiB
    elif spec.layout == "mbr-extended-boot":
        boot_img = os.path.join(work, "boot.img")
        make_ext4(boot_tree, boot_img, 16 * MiB, BOOT_UUID, "boot")
        ext_start = start + 16 * MiB
        root_start = ext_start + MiB
        table = ("label: dos\nlabel-id: 0x5eed0002\nunit: sectors\n"
                 "start=%d, size=%d, type=83, bootable\n"
                 "start=%d, size=%d, type=5\n"
                 "start=%d, size=%d, type=83\n"
                 % (start // SECTOR, 16 * MiB // SECTOR,
                    ext_start // SECTOR, (MiB + root_size) // SECTOR,
                    root_start // SECTOR, root_size // SECTOR))
        parts += [(start, boot_img), (root_start, root_img)]
        total = root_start + root_size + MiB
    elif spec.layout == "mbr-lvm":
        boot_img = os.path.join(work, "boot.img")
        make_ext4(boot_tree, boot_img, 16 * MiB, BOOT_UUID, "boot")
        swap_img = os.path.join(work, "swap.img")
        make_swap(swap_img, 8 * MiB)
        pv_img = os.path.join(work, "pv.img")
        pv_size = root_size + 8 * MiB + 2 * MiB + lvm.PE_START
        pv_size = -(-pv_size // lvm.EXTENT) * lvm.EXTENT + lvm.PE_START
        lvm.build_pv(pv_img, pv_size, "vg0", [("root", root_img),
                                              ("swap", swap_img)])
        pv_start = start + 16 * MiB
        table = ("label: dos\nlabel-id: 0x5eed0003\nunit: sectors\n"
                 "start=%d, size=%d, type=83, bootable\n"
                 "start=%d, size=%d, type=8e\n"
                 % (start // SECTOR, 16 * MiB // SECTOR,
                    pv_start // SECTOR, pv_size // SECTOR))
        parts += [(start, boot_img), (pv_start, pv_img)]
        total = pv_start + pv_size + MiB
    elif spec.layout == "gpt-root-not-last":
        swap_img = os.path.join(work, "swap.img")
        make_swap(swap_img, 8 * MiB)
        swap_start = start + root_size
        table = ("label: gpt\nunit: sectors\nfirst-lba: 2048\n"
                 "start=%d, size=%d, type=%s, name=root\n"
                 "start=%d, size=%d, type=%s, name=swap\n"
                 % (start // SECTOR, root_size // SECTOR, GPT_LINUX,
                    swap_start // SECTOR, 8 * MiB // SECTOR, GPT_SWAP))
        parts += [(start, root_img), (swap_start, swap_img)]
        total = swap_start + 8 * MiB + MiB
    else:
        raise ValueError("unknown layout %r" % spec.layout)
    tmp = out + ".tmp"
    with open(tmp, "wb") as fh:
        fh.truncate(total)
    _sfdisk(tmp, table)
    if spec.layout.startswith("mbr"):
        # The first 440 bytes of a BIOS-bootable MBR are boot code; a jump
        # and a message are enough for the engine's "carries boot code".
        with open(tmp, "r+b") as fh:
            fh.write(b"\xeb\x63\x90" + b"GRUB boot code stand-in\0")
    for offset, image in parts:
        _place(tmp, offset, image)
    os.rename(tmp, out)


def image(spec: DiskSpec, container: str = "raw") -> str:
    """Path to ``spec`` as ``container`` (see CONTAINERS); built once."""
    base = cache_dir()
    raw = os.path.join(base, spec.name + ".raw")
    if not os.path.exists(raw):
        build_raw(spec, raw)
    if container == "raw":
        return raw
    disk_format, opts = CONTAINERS[container]
    out = os.path.join(base, "%s.%s" % (spec.name, container))
    if not os.path.exists(out):
        tmp = out + ".tmp"
        _run("qemu-img", "convert", "-q", "-f", "raw", "-O",
             _QEMU[disk_format], *opts, raw, tmp)
        os.rename(tmp, out)
    return out


def disk_format_of(container: str) -> str:
    return CONTAINERS[container][0]


SPECS = {s.name: s for s in (
    DiskSpec("ubuntu-gpt", "ubuntu", "22.04", "gpt-esp"),
    DiskSpec("debian-mbr", "debian", "12", "mbr"),
    DiskSpec("debian-dirty-mbr", "debian", "12", "mbr", dirty=True),
    DiskSpec("rhel-xfs-gpt", "rhel", "9.1", "gpt-esp", root_fs="xfs"),
    DiskSpec("centos-ext-boot", "centos", "9", "mbr-extended-boot"),
    DiskSpec("centos7-bdb", "centos", "7", "mbr", root_fs="xfs"),
    DiskSpec("fedora-not-last", "fedora", "37", "gpt-root-not-last"),
    DiskSpec("opensuse-mbr", "opensuse-leap", "15.4", "mbr"),
    DiskSpec("sles-dirty-gpt", "sles", "15.4", "gpt-esp", dirty=True),
    DiskSpec("debian-whole-disk", "debian", "12", "whole-disk"),
    DiskSpec("rhel-lvm", "rhel", "9.1", "mbr-lvm"),
    DiskSpec("win2k22-gpt", "windows", "win2k22", "gpt-windows",
             root_fs="ntfs"),
    DiskSpec("win11-dirty-gpt", "windows", "win11", "gpt-windows",
             root_fs="ntfs", dirty=True),
)}
