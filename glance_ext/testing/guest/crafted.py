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

"""Hostile guest images: what a crafted upload may contain.

Symlink loops, links that climb out of the guest root (absolute and
``..``), a directory with tens of thousands of entries, and damaged
superblocks. Each is a real filesystem made by the same tools as the
realistic images, then (for the damaged ones) overwritten at the on-disk
offsets of the fields that matter.
"""

import os
import shutil
import tempfile

from glance_ext.testing.guest import disks
from glance_ext.testing.guest import trees

MiB = disks.MiB


def _tree(work: str, distro: str = "debian", version: str = "12") -> str:
    root = os.path.join(work, "root")
    trees.build(root, trees.TreeSpec(distro, version, fstab=(
        "LABEL=rootfs / ext4 defaults 0 1\n")), None)
    return root


def _finish(name: str, build) -> str:
    out = os.path.join(disks.cache_dir(), "crafted-%s.raw" % name)
    if os.path.exists(out):
        return out
    work = tempfile.mkdtemp(prefix="guest-crafted-", dir=disks.cache_dir())
    try:
        build(work, out + ".tmp")
        os.rename(out + ".tmp", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def symlink_loop() -> str:
    """/etc/os-release and /usr/lib/os-release point at each other, and
    /etc/ssh is a link to itself."""
    def build(work, out):
        root = _tree(work)
        os.unlink(os.path.join(root, "etc/os-release"))
        os.unlink(os.path.join(root, "usr/lib/os-release"))
        os.symlink("/usr/lib/os-release", os.path.join(root,
                                                       "etc/os-release"))
        os.symlink("../../etc/os-release", os.path.join(
            root, "usr/lib/os-release"))
        shutil.rmtree(os.path.join(root, "etc/ssh"))
        os.symlink("ssh", os.path.join(root, "etc/ssh"))
        disks.make_ext4(root, out, 40 * MiB, disks.ROOT_UUID, "rootfs")
    return _finish("symlink-loop", build)


def escaping_links() -> str:
    """Links whose targets climb above the guest root.

    /etc/os-release -> ../../../../../../etc/guest-release and
    /usr/lib/os-release -> /../../../etc/guest-release must both mean the
    guest's own /etc/guest-release (a Fedora 37 release file): resolved on
    the host they would name /etc/guest-release of the build machine,
    which does not exist. /etc/machine-id points at the host's real
    machine-id path, absent in the guest.
    """
    def build(work, out):
        root = _tree(work)
        with open(os.path.join(root, "etc/guest-release"), "w") as fh:
            fh.write(trees.OS_RELEASE[("fedora", "37")])
        os.unlink(os.path.join(root, "etc/os-release"))
        os.unlink(os.path.join(root, "usr/lib/os-release"))
        os.symlink("../../../../../../etc/guest-release",
                   os.path.join(root, "etc/os-release"))
        os.symlink("/../../../etc/guest-release",
                   os.path.join(root, "usr/lib/os-release"))
        os.unlink(os.path.join(root, "etc/machine-id"))
        os.symlink("/proc/self/root/etc/machine-id",
                   os.path.join(root, "etc/machine-id"))
        disks.make_ext4(root, out, 40 * MiB, disks.ROOT_UUID, "rootfs")
    return _finish("escaping-links", build)


HUGE_DIR_ENTRIES = 6000


def huge_directory() -> str:
    """/etc/ssh holds 6,000 files (more than max_dir_entries allows).

    (mke2fs -d inserts linearly: 20,000 entries take 45 s to build.)
    """
    def build(work, out):
        root = _tree(work)
        ssh = os.path.join(root, "etc/ssh")
        for i in range(HUGE_DIR_ENTRIES):
            open(os.path.join(ssh, "f%05d" % i), "w").close()
        with open(out, "wb") as fh:
            fh.truncate(64 * MiB)
        disks._run("mke2fs", "-q", "-F", "-t", "ext4", "-N", "20000",
                   "-U", disks.ROOT_UUID, "-L", "rootfs", "-d", root, out)
    return _finish("huge-dir", build)


def corrupt_superblock(kind: str) -> str:
    """A whole-disk ext4 whose superblock is damaged.

    ``block-size``: s_log_block_size = 30 (a 1 TiB block);
    ``inodes``: s_inodes_per_group and s_inodes_count = 0xffffffff;
    ``groups``: the group descriptor table overwritten with 0xff.
    The magic is kept, so the engine does try to open it.
    """
    def build(work, out):
        root = _tree(work)
        disks.make_ext4(root, out, 40 * MiB, disks.ROOT_UUID, "rootfs")
        with open(out, "r+b") as fh:
            if kind == "block-size":
                fh.seek(1024 + 24)
                fh.write((30).to_bytes(4, "little"))
            elif kind == "inodes":
                fh.seek(1024)
                fh.write(b"\xff\xff\xff\xff")
                fh.seek(1024 + 40)
                fh.write(b"\xff\xff\xff\xff")
            elif kind == "groups":
                fh.seek(4096)     # 4 KiB blocks: descriptors in block 1
                fh.write(b"\xff" * 4096)
            else:
                raise ValueError(kind)
    return _finish("corrupt-" + kind, build)
