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

"""Package databases for the inventory tests, made by their own tools.

- rpm: real packages built by ``rpmbuild`` (Debian's ``rpm`` package) from
  generated spec files, installed with ``rpm --dbpath D -i --justdb`` into
  a database made by ``rpm --initdb``: the SQLite rpmdb of EL9. rpm's own
  ``rpm -qa`` is the reference list.
- BerkeleyDB ``Packages`` (EL7/8) and ndb ``Packages.db`` (SUSE): Debian's
  rpm cannot write either (only sqlite, plus a read-only ``bdb_ro``), so
  they are written here from the header blobs of the SQLite database, by
  the layouts in the engine's ``bdb``/``ndb`` docstrings. The BerkeleyDB
  file is read back by Debian's rpm through ``bdb_ro`` (a test does), so
  it is checked by a reader that is not ours; no ndb reader exists here.
- dpkg: the build machine's own ``/var/lib/dpkg/status`` (a real Debian
  12 status file of some hundreds of packages), with ``dpkg-query`` as
  the reference.
- apk: an installed database written to apk's documented format.
"""

import dataclasses
import os
import shutil
import sqlite3
import struct
import subprocess
import zlib
from typing import List, Optional, Sequence, Tuple


@dataclasses.dataclass(frozen=True)
class RpmSpec:
    name: str
    version: str
    release: str
    epoch: Optional[int] = None
    arch: str = "x86_64"
    license: str = "GPLv3+"
    vendor: str = "glance_ext tests"


EL9_RPMS = (
    RpmSpec("bash", "5.1.8", "6.el9_1"),
    RpmSpec("openssl", "3.0.1", "43.el9_0", epoch=1,
            license="ASL 2.0"),
    RpmSpec("cloud-init", "22.1", "5.el9", arch="noarch"),
    RpmSpec("kernel-core", "5.14.0", "162.6.1.el9_1"),
    RpmSpec("openssh-server", "8.7p1", "24.el9_1"),
    RpmSpec("glibc", "2.34", "40.el9"),
)
EL7_RPMS = (
    RpmSpec("bash", "4.2.46", "35.el7_9"),
    RpmSpec("openssl", "1.0.2k", "26.el7_9", epoch=1),
    RpmSpec("cloud-init", "19.4", "7.el7.centos.6"),
    RpmSpec("kernel", "3.10.0", "1160.el7"),
)
SUSE_RPMS = (
    RpmSpec("bash", "4.4", "150400.25.22", vendor="SUSE LLC"),
    RpmSpec("libopenssl1_1", "1.1.1l", "150400.7.7.1", vendor="SUSE LLC"),
    RpmSpec("cloud-init", "23.1", "150100.8.63.1", vendor="SUSE LLC"),
)


def rpm_missing() -> Optional[str]:
    for tool in ("rpm", "rpmbuild"):
        if shutil.which(tool) is None:
            return "%s is not installed (Debian package rpm)" % tool
    return None


def _run(*cmd: str) -> str:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout


def build_rpms(work: str, specs: Sequence[RpmSpec]) -> List[str]:
    """Build one empty binary rpm per spec with rpmbuild; their paths."""
    top = os.path.join(work, "rpmbuild")
    for d in ("SPECS", "RPMS", "BUILD", "SOURCES", "SRPMS", "BUILDROOT"):
        os.makedirs(os.path.join(top, d), exist_ok=True)
    paths = []
    for spec in specs:
        text = ("Name: %s\nVersion: %s\nRelease: %s\n%sSummary: %s for the "
                "glance_ext inventory tests\nLicense: %s\nVendor: %s\n"
                "%s\n%%description\nGenerated.\n%%files\n"
                % (spec.name, spec.version, spec.release,
                   "Epoch: %d\n" % spec.epoch if spec.epoch is not None
                   else "", spec.name, spec.license, spec.vendor,
                   "BuildArch: noarch" if spec.arch == "noarch" else ""))
        spec_path = os.path.join(top, "SPECS", spec.name + ".spec")
        with open(spec_path, "w") as fh:
            fh.write(text)
        cmd = ["rpmbuild", "-bb", "--quiet", "--define", "_topdir " + top,
               "--define", "_build_id_links none", spec_path]
        if spec.arch != "noarch":
            cmd[2:2] = ["--target", spec.arch]
        _run(*cmd)
        paths.append(os.path.join(
            top, "RPMS", spec.arch, "%s-%s-%s.%s.rpm"
            % (spec.name, spec.version, spec.release, spec.arch)))
    return paths


def sqlite_rpmdb(dbdir: str, specs: Sequence[RpmSpec]) -> str:
    """An rpmdb.sqlite with ``specs`` installed (--justdb); its path."""
    os.makedirs(dbdir, exist_ok=True)
    rpms = build_rpms(os.path.join(dbdir, ".build"), specs)
    _run("rpm", "--dbpath", dbdir, "--define", "_db_backend sqlite",
         "--initdb")
    _run("rpm", "--dbpath", dbdir, "--define", "_db_backend sqlite", "-i",
         "--justdb", "--nodeps", "--noscripts", "--notriggers",
         "--ignorearch", "--ignoreos", *rpms)
    shutil.rmtree(os.path.join(dbdir, ".build"))
    # rpm keeps the database in WAL mode and leaves rpmdb.sqlite-shm and
    # an empty, checkpointed rpmdb.sqlite-wal beside it, as on a real
    # EL9 or Fedora system; both stay: SQLite cannot open a WAL database
    # on read-only media without them (rpm's own queries of a guest
    # mounted read-only then fail). Only the lock file goes.
    lock = os.path.join(dbdir, ".rpm.lock")
    if os.path.exists(lock):
        os.unlink(lock)
    return os.path.join(dbdir, "rpmdb.sqlite")


def header_blobs(sqlite_path: str) -> List[Tuple[int, bytes]]:
    conn = sqlite3.connect("file:%s?mode=ro" % sqlite_path, uri=True)
    try:
        return list(conn.execute("SELECT hnum, blob FROM Packages "
                                 "ORDER BY hnum"))
    finally:
        conn.close()


def rpm_qa(dbdir: str, backend: str = "sqlite") -> List[Tuple[str, ...]]:
    """rpm's own list: (name, [epoch:]version-release, arch), sorted."""
    out = _run("rpm", "--dbpath", dbdir, "--define",
               "_db_backend " + backend, "-qa", "--qf",
               "%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE} "
               "%{ARCH}\n")
    return sorted(tuple(line.split()) for line in out.splitlines() if line)


# -- BerkeleyDB hash database (the layout of the engine's bdb module) --

def _fnv(key: bytes) -> int:
    h = 0
    for byte in key:
        h = ((h * 16777619) & 0xFFFFFFFF) ^ byte
    return h


def write_bdb(path: str, records: Sequence[Tuple[int, bytes]],
              pagesize: int = 4096, big_endian: bool = False) -> None:
    """A hash database of (record number, header blob), as rpm keeps it.

    Four buckets (pages 1-4), record 0 holding the next record number,
    every header on an overflow chain.
    """
    e = ">" if big_endian else "<"
    buckets = 4
    pages: List[bytearray] = [bytearray(pagesize)]     # 0: meta
    for _ in range(buckets):
        pages.append(bytearray(pagesize))
    items: List[List[Tuple[bytes, bytes]]] = [[] for _ in range(buckets)]

    def place(key: bytes, item: bytes) -> None:
        bucket = _fnv(key) & (buckets - 1)
        items[bucket].append((b"\x01" + key, item))

    def overflow(data: bytes) -> int:
        first = len(pages)
        chunks = [data[i:i + pagesize - 26]
                  for i in range(0, len(data), pagesize - 26)]
        for n, chunk in enumerate(chunks):
            page = bytearray(pagesize)
            number = first + n
            nxt = number + 1 if n + 1 < len(chunks) else 0
            prev = number - 1 if n else 0
            struct.pack_into(e + "IIIHHBB", page, 8, number, prev, nxt, 0,
                             len(chunk), 0, 7)
            page[26:26 + len(chunk)] = chunk
            pages.append(page)
        return first

    top = max([n for n, _ in records] + [0]) + 1
    place(struct.pack(e + "I", 0), b"\x01" + struct.pack(e + "I", top))
    for number, blob in records:
        first = overflow(blob)
        place(struct.pack(e + "I", number),
              struct.pack(e + "B3xII", 3, first, len(blob)))
    for bucket in range(buckets):
        number = bucket + 1
        page = pages[number]
        pairs = items[bucket]
        needed = sum(len(k) + len(v) + 4 for k, v in pairs)
        if 26 + needed > pagesize:
            raise ValueError("the test writer keeps one page per bucket")
        offsets, top_off = [], pagesize
        for key, value in pairs:
            top_off -= len(key)
            page[top_off:top_off + len(key)] = key
            offsets.append(top_off)
            top_off -= len(value)
            page[top_off:top_off + len(value)] = value
            offsets.append(top_off)
        struct.pack_into(e + "IIIHHBB", page, 8, number, 0, 0, len(offsets),
                         top_off, 0, 13)
        for i, off in enumerate(offsets):
            struct.pack_into(e + "H", page, 26 + 2 * i, off)
    meta = pages[0]
    struct.pack_into(e + "IIIIBBBB", meta, 8, 0, 0x00061561, 9, pagesize,
                     0, 8, 0, 0)
    struct.pack_into(e + "IIIIII", meta, 28, 0, len(pages) - 1, 0,
                     len(records) + 1, len(records) + 1, 0)
    struct.pack_into(e + "IIIIII", meta, 72, buckets - 1, buckets - 1,
                     buckets // 2 - 1, 0, len(records) + 1, 0)
    struct.pack_into(e + "3I", meta, 96, 1, 1, 1)
    with open(path, "wb") as fh:
        for page in pages:
            fh.write(page)


# -- rpm's ndb Packages.db (the layout of the engine's ndb module) --

def write_ndb(path: str, blobs: Sequence[bytes]) -> None:
    slot_pages = 1
    out = bytearray(4096 * slot_pages)
    out[0:4] = b"RpmP"
    struct.pack_into("<IIII", out, 4, 0, 1, slot_pages, len(blobs) + 1)
    for offset in range(32, 4096 * slot_pages, 16):
        out[offset:offset + 4] = b"Slot"
    for index, blob in enumerate(blobs, 1):
        blkoff = len(out) // 16
        blkcnt = (16 + len(blob) + 12 + 15) // 16
        head = b"BlbS" + struct.pack("<III", index, 1700000000, len(blob))
        body = head + blob + b"\0" * (blkcnt * 16 - 16 - len(blob) - 12)
        out += body + struct.pack("<II", zlib.adler32(body), len(blob)) + \
            b"BlbE"
        struct.pack_into("<III", out, 32 + (index - 1) * 16 + 4, index,
                         blkoff, blkcnt)
    with open(path, "wb") as fh:
        fh.write(out)


# -- apk and dpkg --

ALPINE_APKS = (
    ("musl", "1.2.4-r2", "x86_64", "musl", "MIT"),
    ("busybox", "1.36.1-r5", "x86_64", "busybox", "GPL-2.0-only"),
    ("openssl", "3.1.4-r1", "x86_64", "openssl", "Apache-2.0"),
    ("libcrypto3", "3.1.4-r1", "x86_64", "openssl", "Apache-2.0"),
    ("alpine-baselayout-data", "3.4.3-r1", "x86_64", "alpine-baselayout",
     "GPL-2.0-only"),
)


def apk_installed(packages=ALPINE_APKS) -> str:
    """An installed database as apk writes it (fields in apk's order)."""
    records = []
    for name, version, arch, origin, lic in packages:
        records.append(
            "C:Q1%s=\nP:%s\nV:%s\nA:%s\nS:12345\nI:45678\nT:%s package\n"
            "U:https://alpinelinux.org\nL:%s\no:%s\nm:Natanael Copa\n"
            "t:1700000000\nc:0123456789abcdef\nD:so:libc.musl-x86_64.so.1\n"
            "F:usr/lib\nR:lib%s.so.1\na:0:0:755\nZ:Q1abc=\n"
            % ("x" * 26, name, version, arch, name, lic, origin, name))
    return "\n".join(records) + "\n"


HOST_DPKG_STATUS = "/var/lib/dpkg/status"


def host_dpkg_status() -> Optional[str]:
    """The build machine's dpkg status file, if it is a Debian."""
    return HOST_DPKG_STATUS if os.path.isfile(HOST_DPKG_STATUS) else None


def dpkg_query(admindir: str) -> List[Tuple[str, str, str]]:
    """dpkg's own list of installed packages in ``admindir``/status."""
    out = _run("dpkg-query", "--admindir", admindir, "-W", "-f",
               "${db:Status-Abbrev}|${Package}|${Version}|${Architecture}\n")
    rows = []
    for line in out.splitlines():
        abbrev, name, version, arch = line.split("|")
        if abbrev.strip() == "ii" or abbrev[1:2] == "i":
            rows.append((name, version, arch))
    return sorted(rows)


# -- a guest tree holding only some files, for the reader tests --

class FileTree:
    """A small ext4 filesystem made by mke2fs -d, opened as a GuestTree.

    The readers are tested through the same bounded disk, libfsext and
    guest tree as in a full inspection, without building a whole guest.
    """

    def __init__(self, workdir: str, files, links=(),
                 size_mb: int = 32) -> None:
        from glance_ext.guest import disk as disk_mod
        from glance_ext.guest import filesystems
        from glance_ext.guest import guesttree
        from glance_ext.testing.guest import disks
        root = os.path.join(workdir, "tree")
        for path, data in files.items():
            full = os.path.join(root, path.lstrip("/"))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            if isinstance(data, str) and os.path.isfile(data):
                shutil.copyfile(data, full)
            else:
                with open(full, "wb") as fh:
                    fh.write(data.encode() if isinstance(data, str)
                             else data)
        for path, target in links:
            full = os.path.join(root, path.lstrip("/"))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            os.symlink(target, full)
        os.makedirs(root, exist_ok=True)
        self.image = os.path.join(workdir, "fs.img")
        disks.make_ext4(root, self.image, size_mb * 1024 * 1024,
                        "6a1b2c3d-0000-4000-8000-00000000c003", "pkgs")
        self.disk = disk_mod.open_disk(self.image, "raw",
                                       budget_bytes=512 * 1024 * 1024)
        view = disk_mod.PartitionView(self.disk, 0, self.disk.size)
        self.tree = guesttree.GuestTree()
        self.tree.mount("/", filesystems.GuestFs("ext4", view))

    def close(self) -> None:
        self.disk.close()
