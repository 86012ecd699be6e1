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

"""The guest inspection pipeline, run inside the bounded worker process.

disk (raw file or qemu-nbd) -> partition table -> filesystem identity of
every partition -> the root filesystem (the one holding a Linux userland)
-> its fstab mounts (/boot, /boot/efi, ...) -> OS identity, architecture,
firmware, partition facts -> the Image Guide checks. Everything that could
not be read is reported with the reason; nothing is guessed.
"""

import resource
import time
from typing import Any, Dict, List, Optional, Tuple

from glance_ext import exceptions
from glance_ext.guest import checks as checks_mod
from glance_ext.guest import disk as disk_mod
from glance_ext.guest import drivers as drivers_mod
from glance_ext.guest import elf
from glance_ext.guest import filesystems
from glance_ext.guest import fsprobe
from glance_ext.guest import fstab
from glance_ext.guest import guesttree
from glance_ext.guest import lvm
from glance_ext.guest import osdetect
from glance_ext.guest import packages as packages_mod
from glance_ext.guest import partitions
from glance_ext.guest import windows

# NTFS grows online too (Windows extends it; cloudbase-init has a plugin).
GROWABLE_FS = ("ext2", "ext3", "ext4", "xfs", "btrfs", "ntfs")
SINGLE_FILE_VMDK = ("monolithicSparse", "streamOptimized")
# Partitions that never hold a filesystem: no error for having none.
NO_FS_TYPES = ("BIOS boot", "Microsoft reserved")


# The image cannot be inspected at all (bad format, unsafe container).
InspectionError = exceptions.GuestInspectionError


def _precheck(path: str, disk_format: str) -> Optional[int]:
    """Refuse containers that would make qemu open a second file."""
    if disk_format in disk_mod.RAW_FORMATS:
        return None
    # Imported here: raw images need no qemu-img, and oslo_concurrency's
    # import is a measurable part of a short-lived worker's run time.
    from glance_ext.qemu import runner
    try:
        qemu_img = runner.QemuImg(limits=_qemu_img_limits())
        info = qemu_img.info(path, disk_format)
    except runner.QemuImgError as exc:
        if exc.kind == "missing":
            # The host's problem: its message says what to install or set.
            raise exceptions.qemu_error(
                "missing", "qemu-img is needed to inspect %s images: %s"
                % (disk_format, exc), fix=exc.fix)
        raise InspectionError("qemu-img cannot read the image as %s (%s); "
                              "check its disk_format" % (disk_format, exc))
    if info.get("backing-filename"):
        raise InspectionError("the image has a backing file; only "
                              "self-contained images can be inspected")
    specific = (info.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file"):
        raise InspectionError("the qcow2 image names an external data file; "
                              "refusing to open it")
    if disk_format == "vmdk" and specific.get("create-type") not in \
            SINGLE_FILE_VMDK:
        raise InspectionError("VMDK create-type %r refers to other files; "
                              "only %s can be inspected"
                              % (specific.get("create-type"),
                                 ", ".join(SINGLE_FILE_VMDK)))
    return info.get("virtual-size")


def _qemu_img_limits():
    """qemu-img's usual limits, lowered to what this worker may still use.

    prlimit cannot raise a hard limit, so limits above the worker's own
    would make qemu-img fail before it starts.
    """
    from glance_ext.qemu import runner
    base = runner.Limits()
    cpu = resource.getrlimit(resource.RLIMIT_CPU)[1]
    mem = resource.getrlimit(resource.RLIMIT_AS)[1]
    return runner.Limits(
        cpu_seconds=base.cpu_seconds if cpu == resource.RLIM_INFINITY
        else min(base.cpu_seconds, cpu),
        address_space_bytes=base.address_space_bytes
        if mem == resource.RLIM_INFINITY
        else min(base.address_space_bytes, mem),
        timeout_seconds=base.timeout_seconds)


class _Volume:
    """One partition (or the whole disk) and what the engine learnt of it."""

    def __init__(self, part: Optional[partitions.Partition], view,
                 lv: Optional[str] = None) -> None:
        self.part = part
        self.view = view
        self.lv = lv                  # "vg/lv" for a logical volume
        self.ident: Optional[fsprobe.FsIdentity] = None
        self.fs: Optional[filesystems.GuestFs] = None
        self.error: Optional[str] = None
        self.mountpoint: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        p = self.part
        return {
            "number": p.number if p else 0,
            "start": p.start if p else 0,
            "size": self.view.get_size() if self.lv or not p else p.size,
            "end": p.end if p else self.view.get_size(),
            "type_id": p.type_id if p else None,
            "type_name": ("LVM logical volume %s" % self.lv) if self.lv
            else (p.type_name if p else "whole disk"),
            "lv": self.lv,
            "bootable": p.bootable if p else False,
            "name": p.name if p else None,
            "part_uuid": p.part_uuid if p else None,
            "fs_type": self.ident.fs_type if self.ident else None,
            "fs_uuid": self.ident.uuid if self.ident else None,
            "fs_label": self.ident.label if self.ident else None,
            "readable": self.fs is not None,
            "mountpoint": self.mountpoint,
            "error": self.error,
        }


def _open_volumes(disk, table: partitions.PartitionTable) -> List[_Volume]:
    if table.partitions:
        volumes = [_Volume(p, disk_mod.PartitionView(disk, p.start, p.size))
                   for p in table.partitions
                   if p.start < disk.size and
                   p.type_id not in ("0x05", "0x0f", "0x85")]
    else:
        volumes = [_Volume(None, disk_mod.PartitionView(disk, 0, disk.size))]
    # Logical volumes found on a PV are appended and probed in turn.
    for vol in volumes:
        try:
            vol.ident = fsprobe.probe(vol.view)
        except disk_mod.ReadBudgetExceeded:
            raise
        except (disk_mod.DiskError, lvm.LvmError) as exc:
            vol.error = str(exc)
            continue
        if vol.ident is None:
            if vol.part is None or vol.part.type_name not in NO_FS_TYPES:
                vol.error = "no known filesystem signature"
            continue
        if vol.ident.fs_type == "LVM2_member" and vol.lv is None:
            volumes.extend(_logical_volumes(disk, vol))
            continue
        if vol.ident.fs_type == "swap":
            continue                  # nothing to read, nothing wrong
        if vol.ident.fs_type in filesystems.UNREADABLE:
            vol.error = "%s is identified but not readable by this engine" \
                % vol.ident.fs_type
            continue
        try:
            vol.fs = filesystems.GuestFs(vol.ident.fs_type, vol.view)
        except filesystems.FsError as exc:
            _raise_if_over_budget(disk)
            vol.error = str(exc)
    return volumes


def _logical_volumes(disk, pv: _Volume) -> List[_Volume]:
    """The LVs of a PV, as volumes to probe (appended after the PV)."""
    try:
        vg, lvs = lvm.logical_volumes(pv.view)
    except lvm.LvmError as exc:
        _raise_if_over_budget(disk)
        pv.error = str(exc)
        return []
    pv.error = None
    return [_Volume(pv.part, view, lv="%s/%s" % (vg, name))
            for name, view in lvs]


def _inventory(disk, tree, kind: str, limits) -> Dict[str, Any]:
    """The package inventory as a report section (``packages.Inventory``)."""
    # An inspection that already ran out of budget ends here, as before.
    _raise_if_over_budget(disk)
    start = time.monotonic()
    before = disk.bytes_read
    # The inventory has a budget of its own on top of the inspection's
    # (package databases are megabytes where the rest reads kilobytes),
    # granted only now: the inspection itself stays within read_budget_mb.
    disk.budget += limits["inventory_bytes"]
    sysroot = windows.system_root(tree) if kind == "windows" else None
    inv = packages_mod.collect(tree, kind, limits["inventory_bytes"],
                               windows_root=sysroot)
    _raise_if_over_budget(disk)
    data = inv.to_dict()
    data["disk_bytes_read"] = disk.bytes_read - before
    data["elapsed"] = round(time.monotonic() - start, 4)
    return data


def _raise_if_over_budget(disk) -> None:
    # libyal turns our ReadBudgetExceeded into its own IOError; the disk
    # remembers that the budget ran out, so the engine can say so.
    if disk.exhausted:
        raise disk_mod.ReadBudgetExceeded(disk.exhausted)


def _tree(limits: Dict[str, int]) -> guesttree.GuestTree:
    return guesttree.GuestTree(limits["max_file_bytes"],
                               limits["max_dir_entries"])


def _find_root(volumes, limits) -> Tuple[Optional[_Volume], str,
                                         List[str]]:
    """The volume holding the OS: (volume, "linux"|"windows"|"", notes).

    A Linux root (an /etc with fstab or os-release, and a userland) wins
    over a Windows system volume; several candidates are reported.
    """
    notes: List[str] = []
    found = {"linux": [], "windows": []}
    for vol in volumes:
        if vol.fs is None:
            continue
        tree = _tree(limits)
        tree.mount("/", vol.fs)
        try:
            if osdetect.looks_like_linux_root(tree):
                found["linux"].append(vol)
            elif windows.system_root(tree):
                found["windows"].append(vol)
        except guesttree.GuestPathError as exc:
            notes.append("partition %s: %s" % (_vol_name(vol), exc))
    for kind in ("linux", "windows"):
        roots = found[kind]
        if not roots:
            continue
        if len(roots) > 1:
            notes.append("several filesystems look like a %s root: %s; "
                         "using the first" % (kind, ", ".join(
                             _vol_name(v) for v in roots)))
        return roots[0], kind, notes
    return None, "", notes


def _vol_name(vol: _Volume) -> str:
    return vol.lv or str(vol.part.number if vol.part else 0)


def _mount_fstab(tree, root: _Volume, volumes, notes) -> None:
    text = tree.read_text("/etc/fstab")
    if text is None:
        notes.append("the root filesystem has no readable /etc/fstab")
        return
    for entry in fstab.parse(text):
        if entry.mountpoint == "/" or not entry.mountpoint.startswith("/"):
            continue
        if entry.fs_type in ("swap", "tmpfs", "proc", "sysfs", "devpts",
                             "nfs", "nfs4", "cifs"):
            continue
        match = None
        for vol in volumes:
            if vol is root:
                continue
            p = vol.part
            if fstab.matches(entry.spec,
                             uuid=vol.ident.uuid if vol.ident else None,
                             label=vol.ident.label if vol.ident else None,
                             part_uuid=p.part_uuid if p else None,
                             part_label=p.name if p else None,
                             number=p.number if p else None,
                             lv=vol.lv):
                match = vol
                break
        if match is None:
            notes.append("fstab entry %s on %s matches no partition"
                         % (entry.spec, entry.mountpoint))
            continue
        match.mountpoint = entry.mountpoint
        if match.fs is None:
            notes.append("%s (%s) is not readable: %s"
                         % (entry.mountpoint, entry.spec, match.error))
            continue
        tree.mount(entry.mountpoint, match.fs)


def _architecture(tree, kind: str) -> Tuple[Optional[str], Optional[str]]:
    if kind == "windows":
        root = windows.system_root(tree) or "/Windows"
        path = root + "/System32/ntoskrnl.exe"
        try:
            return windows.pe_architecture(tree.read(path, 4096)), path
        except guesttree.GuestPathError:
            return None, None
    for path in elf.PROBE_PATHS:
        try:
            if not tree.is_file(path):
                continue
            arch = elf.architecture(tree.read(path, 64))
        except guesttree.GuestPathError:
            continue
        if arch:
            return arch, path
    return None, None


def _firmware(table, volumes, tree) -> Tuple[Optional[str], List[str]]:
    ev = []
    uefi = bios = False
    for vol in volumes:
        if vol.part is None or not vol.part.is_esp or vol.fs is None:
            continue
        esp = _tree({"max_file_bytes": 4096, "max_dir_entries": 256})
        esp.mount("/", vol.fs)
        loaders = []
        for sub in esp.listdir("/EFI"):
            for name in esp.listdir("/EFI/" + sub):
                if name.lower().endswith(".efi"):
                    loaders.append("/EFI/%s/%s" % (sub, name))
        # Windows keeps its boot manager one level deeper.
        if esp.is_file("/EFI/Microsoft/Boot/bootmgfw.efi"):
            loaders.append("/EFI/Microsoft/Boot/bootmgfw.efi")
        if loaders:
            uefi = True
            ev.append("ESP (partition %d) has %s" % (vol.part.number,
                                                     ", ".join(loaders[:4])))
        else:
            ev.append("ESP (partition %d) has no EFI loader"
                      % vol.part.number)
    if any(p.is_bios_boot for p in table.partitions):
        bios = True
        ev.append("GPT has a BIOS boot partition")
    elif table.scheme == "mbr" and table.boot_code:
        bios = True
        ev.append("MBR carries boot code")
    if tree is not None and (tree.exists("/boot/grub/i386-pc") or
                             tree.exists("/boot/grub2/i386-pc")):
        ev.append("grub i386-pc modules in /boot")
        if table.scheme == "mbr" or any(p.is_bios_boot
                                        for p in table.partitions):
            bios = True
    if uefi and bios:
        return "both", ev
    if uefi:
        return "uefi", ev
    if bios:
        return "bios", ev
    return None, ev or ["no ESP loader, BIOS boot partition or MBR boot "
                        "code found"]


def inspect(path: str, disk_format: str, *, budget_bytes: int,
            qemu_nbd: str = "qemu-nbd", max_file_bytes: int = 256 * 1024,
            max_dir_entries: int = 4096,
            inventory_bytes: int = 0) -> Dict[str, Any]:
    """Inspect one image; returns the report dict (see ``report``).

    ``inventory_bytes`` > 0 also lists the installed packages and kernels
    (``packages``), reading at most that many more bytes for the package
    databases; 0 skips the inventory.
    """
    start = time.monotonic()
    limits = {"max_file_bytes": max_file_bytes,
              "max_dir_entries": max_dir_entries,
              "inventory_bytes": inventory_bytes}
    out: Dict[str, Any] = {"path": path, "disk_format": disk_format,
                           "os": {"os_type": "unknown"}, "checks": [],
                           "partitions": [], "notes": [], "error": None}
    virtual_size = _precheck(path, disk_format)
    disk = disk_mod.open_disk(path, disk_format, budget_bytes=budget_bytes,
                              qemu_nbd=qemu_nbd)
    out["reader"] = "file" if disk_format in disk_mod.RAW_FORMATS \
        else "qemu-nbd"
    try:
        out["virtual_size"] = virtual_size or disk.size
        try:
            _inspect_disk(disk, out, limits)
        except disk_mod.ReadBudgetExceeded as exc:
            out["error"] = str(exc)
        except (disk_mod.DiskError, partitions.PartitionTableError) as exc:
            out["error"] = str(exc)
        if disk.exhausted and not out["error"]:
            out["error"] = disk.exhausted
    finally:
        out["bytes_read"] = disk.bytes_read
        out["read_requests"] = disk.reads
        out["image_bytes_read"] = disk.image_bytes_read()
        disk.close()
    out["notes"] = list(dict.fromkeys(out["notes"]))
    out["elapsed"] = round(time.monotonic() - start, 4)
    return out


def _inspect_disk(disk, out: Dict[str, Any], limits) -> None:
    table = partitions.read_table(disk)
    out["partition_table"] = table.scheme
    out["notes"].extend(table.warnings)
    volumes = _open_volumes(disk, table)
    root, kind, notes = _find_root(volumes, limits)
    out["notes"].extend(notes)
    tree = None
    if root is not None:
        root.mountpoint = "/"
        tree = _tree(limits)
        tree.mount("/", root.fs)
        if kind == "linux":
            _mount_fstab(tree, root, volumes, out["notes"])
            ident = osdetect.detect_linux(tree) or osdetect.OsIdentity(
                "linux", evidence=["a Linux root without os-release"])
        else:
            ident = windows.detect(tree)
            sysroot = windows.system_root(tree)
            out["windows_drivers"] = (
                drivers_mod.find_drivers(tree, sysroot) if sysroot
                else drivers_mod.unknown("no Windows system root found"))
        out["os"] = {"os_type": ident.os_type, "distro": ident.distro,
                     "version": ident.version,
                     "product_name": ident.product_name,
                     "osinfo_id": ident.osinfo_id, "id_like": ident.id_like,
                     "build": ident.build, "evidence": ident.evidence}
        arch, arch_from = _architecture(tree, kind)
        out["architecture"] = arch
        out["architecture_evidence"] = arch_from
        out["root"] = {"partition": root.part.number if root.part else 0,
                       "fs_type": root.ident.fs_type,
                       "fs_uuid": root.ident.uuid, "lv": root.lv}
    else:
        out["architecture"] = None
        out["root"] = None
        out["notes"].append("no readable filesystem holds an operating "
                            "system the engine recognises")
    fw, fw_ev = _firmware(table, volumes, tree)
    out["firmware"] = fw
    out["firmware_evidence"] = fw_ev
    parts = [v.part for v in volumes if v.part is not None]
    if root is not None:
        if root.part is None:
            out["root_is_last"] = True
        else:
            out["root_is_last"] = max(p.start for p in parts) == \
                root.part.start
        # growpart grows the partition (the PV) but nothing extends the
        # LV inside it at first boot: a root LV does not grow by itself.
        out["root_can_grow"] = bool(out["root_is_last"] and
                                    root.ident.fs_type in GROWABLE_FS and
                                    root.lv is None)
    else:
        out["root_is_last"] = out["root_can_grow"] = None
    out["partitions"] = [v.to_dict() for v in volumes]
    if root is not None:
        ctx = checks_mod.Context(tree, kind, out["root_is_last"],
                                 root_on_lvm=root.lv is not None,
                                 root_fs_type=root.ident.fs_type)
        out["checks"] = [c.to_dict() for c in checks_mod.run_checks(ctx)]
        if limits["inventory_bytes"]:
            out["packages"] = _inventory(disk, tree, kind, limits)
        out["notes"].extend(tree.notes)
    _raise_if_over_budget(disk)
