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

"""The package inventory: each database format, read as rpm/dpkg read it.

Fixtures come from the formats' own tools where this machine has them
(``rpmbuild`` + ``rpm --initdb``/``-i --justdb`` for the SQLite rpmdb,
the build machine's real dpkg status), and their lists from those tools
(``rpm -qa``, ``dpkg-query -W``) are what the engine must report. The
BerkeleyDB file is written by the test writer and read by Debian's rpm
(``bdb_ro``) too. Corrupt and oversized databases must be refused with a
message, within budget, never half read.
"""

import os
import shutil
import sqlite3
import struct

import pytest

from glance_ext import testing
from glance_ext.guest import packages
from glance_ext.guest.packages import apk
from glance_ext.guest.packages import bdb
from glance_ext.guest.packages import dpkg
from glance_ext.guest.packages import ndb
from glance_ext.guest.packages import rpmdb
from glance_ext.guest.packages import rpmheader
from glance_ext.testing.guest import pkgdb

MiB = 1024 * 1024


def _need_rpm():
    why = pkgdb.rpm_missing()
    if why:
        testing.needs(why + ": CI must have it (tools/install-system-deps"
                      ".sh --test)")


@pytest.fixture
def file_tree(tmp_path):
    made = []

    def make(files, links=(), size_mb=32):
        work = tmp_path / ("t%d" % len(made))
        work.mkdir()
        ft = pkgdb.FileTree(str(work), files, links, size_mb)
        made.append(ft)
        return ft.tree
    yield make
    for ft in made:
        ft.close()


@pytest.fixture(scope="module")
def el9_db(tmp_path_factory):
    _need_rpm()
    dbdir = str(tmp_path_factory.mktemp("el9") / "db")
    path = pkgdb.sqlite_rpmdb(dbdir, pkgdb.EL9_RPMS)
    return dbdir, path


def _rows(inv):
    return sorted((p.name, p.evr, p.arch) for p in inv.packages)


def _collect(tree, budget=64 * MiB):
    return packages.collect(tree, "linux", budget)


# -- dpkg --

def test_dpkg_real_status_matches_dpkg_query(file_tree, tmp_path):
    host = pkgdb.host_dpkg_status()
    if host is None or shutil.which("dpkg-query") is None:
        testing.needs("not a Debian build machine (CI runs on Debian: "
                      "/var/lib/dpkg/status expected)")
    admin = tmp_path / "admin"
    admin.mkdir()
    shutil.copyfile(host, admin / "status")
    expected = pkgdb.dpkg_query(str(admin))
    inv = _collect(file_tree({"/var/lib/dpkg/status": host}))
    assert inv.error is None
    assert inv.format is packages.PackageFormat.DPKG
    assert _rows(inv) == expected
    assert len(expected) > 100
    assert inv.bytes_read == os.path.getsize(host)
    by_name = {p.name: p for p in inv.packages}
    libc = by_name["libc6"]
    assert (libc.source, libc.source_version) == ("glibc", libc.evr)


def test_dpkg_status_fields_and_not_installed():
    text = ("Package: openssh-server\nStatus: install ok installed\n"
            "Architecture: amd64\nSource: openssh (1:9.2p1-2)\n"
            "Version: 1:9.2p1-2+deb12u2\nDescription: secure shell\n"
            " continuation line\n .\n\n"
            "Package: gone\nStatus: deinstall ok config-files\n"
            "Architecture: amd64\nVersion: 1.0-1\n\n"
            "Package: half\nStatus: install reinstreq half-installed\n"
            "Architecture: amd64\nVersion: 2.0\n")
    inv = packages.Inventory()

    class Tree:
        def stat(self, path):
            return type("S", (), {"kind": "file", "size": len(text)})

        def read(self, path, max_bytes=None):
            return text.encode()

    dpkg.read(Tree(), dpkg.STATUS, packages.Budget(MiB), inv, 100)
    assert inv.packages == [packages.Package(
        name="openssh-server", version="9.2p1", release="2+deb12u2",
        epoch=1, arch="amd64", source="openssh",
        source_version="1:9.2p1-2")]
    assert inv.packages[0].evr == "1:9.2p1-2+deb12u2"


def test_dpkg_corrupt_line_is_named(file_tree):
    inv = _collect(file_tree({"/var/lib/dpkg/status":
                              "Package: a\nStatus: install ok installed\n"
                              "this is not a field\n"}))
    assert inv.packages == []
    assert inv.error == ("/var/lib/dpkg/status line 3 is not a 'Field: "
                         "value' line: 'this is not a field' (the file is "
                         "corrupt)")


def test_oversized_database_refused_before_reading(file_tree):
    big = "".join("Package: p%d\nStatus: install ok installed\n"
                  "Version: 1.0\n\n" % i for i in range(40000))
    tree = file_tree({"/var/lib/dpkg/status": big})
    inv = _collect(tree, budget=256 * 1024)
    assert inv.packages == []
    assert "/var/lib/dpkg/status is 2.2 MiB, more than the 0.2 MiB left " \
        "of the inventory budget" in inv.error
    assert "inventory_budget_mb" in inv.error
    assert inv.bytes_read == 0


def test_too_many_packages_refused(file_tree):
    text = "".join("Package: p%d\nStatus: install ok installed\n"
                   "Version: 1.0\n\n" % i for i in range(50))
    inv = packages.collect(file_tree({"/var/lib/dpkg/status": text}),
                           "linux", MiB, max_packages=20)
    assert inv.packages == []
    assert inv.error == "the package database lists more than 20 packages"


# -- rpm: SQLite, BerkeleyDB, ndb --

def test_rpm_sqlite_matches_rpm_qa(el9_db, file_tree):
    dbdir, path = el9_db
    inv = _collect(file_tree({"/var/lib/rpm/rpmdb.sqlite": path}))
    assert inv.error is None
    assert inv.format is packages.PackageFormat.RPM_SQLITE
    assert _rows(inv) == pkgdb.rpm_qa(dbdir)
    ssl = next(p for p in inv.packages if p.name == "openssl")
    assert (ssl.epoch, ssl.version, ssl.release, ssl.license) == \
        (1, "3.0.1", "43.el9_0", "ASL 2.0")
    assert (ssl.source, ssl.source_version) == ("openssl", "3.0.1-43.el9_0")
    assert ssl.vendor == "glance_ext tests"


def test_rpm_sqlite_through_the_sysimage_link(el9_db, file_tree):
    # Fedora 36+: /var/lib/rpm -> ../../usr/lib/sysimage/rpm
    dbdir, path = el9_db
    tree = file_tree({"/usr/lib/sysimage/rpm/rpmdb.sqlite": path},
                     links=[("/var/lib/rpm", "../../usr/lib/sysimage/rpm")])
    inv = _collect(tree)
    assert inv.database == "/usr/lib/sysimage/rpm/rpmdb.sqlite"
    assert _rows(inv) == pkgdb.rpm_qa(dbdir)


@pytest.mark.parametrize("big_endian", [False, True])
def test_rpm_bdb_matches_rpm_bdb_ro(el9_db, file_tree, tmp_path,
                                    big_endian):
    dbdir, path = el9_db
    out = tmp_path / "bdb"
    out.mkdir()
    pkgdb.write_bdb(str(out / "Packages"), pkgdb.header_blobs(path),
                    big_endian=big_endian)
    # Debian's rpm reads the file with its own read-only BerkeleyDB code.
    assert pkgdb.rpm_qa(str(out), "bdb_ro") == pkgdb.rpm_qa(dbdir)
    inv = _collect(file_tree({"/var/lib/rpm/Packages":
                              str(out / "Packages")}))
    assert inv.error is None
    assert inv.format is packages.PackageFormat.RPM_BDB
    assert _rows(inv) == pkgdb.rpm_qa(dbdir)


def test_rpm_ndb_lists_every_header(el9_db, file_tree, tmp_path):
    dbdir, path = el9_db
    pkgdb.write_ndb(str(tmp_path / "Packages.db"),
                    [b for _n, b in pkgdb.header_blobs(path)])
    inv = _collect(file_tree({"/usr/lib/sysimage/rpm/Packages.db":
                              str(tmp_path / "Packages.db")}))
    assert inv.error is None
    assert inv.format is packages.PackageFormat.RPM_NDB
    assert _rows(inv) == pkgdb.rpm_qa(dbdir)


def test_sqlite_wins_over_a_leftover_bdb(el9_db, file_tree, tmp_path):
    dbdir, path = el9_db
    inv = _collect(file_tree({"/var/lib/rpm/rpmdb.sqlite": path,
                              "/var/lib/rpm/Packages": b"stale"}))
    assert inv.format is packages.PackageFormat.RPM_SQLITE


def _sqlite_file(tmp_path, sql):
    path = tmp_path / "crafted.sqlite"
    conn = sqlite3.connect(str(path))
    conn.executescript(sql)
    conn.commit()
    conn.close()
    return path.read_bytes()


def test_sqlite_view_instead_of_table_refused(tmp_path):
    # A view could compute anything (a CPU bomb); only a table is read.
    data = _sqlite_file(tmp_path, "CREATE VIEW Packages AS WITH RECURSIVE "
                        "c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
                        "SELECT x AS hnum, x AS blob FROM c;")
    with pytest.raises(packages.InventoryError,
                       match="has no Packages table"):
        rpmdb.sqlite_blobs(data, "/var/lib/rpm/rpmdb.sqlite", 100)


def test_sqlite_garbage_and_bad_rows_refused(tmp_path):
    with pytest.raises(packages.InventoryError,
                       match="is not an SQLite database"):
        rpmdb.sqlite_blobs(b"\0" * 4096, "x.sqlite", 100)
    damaged = bytearray(_sqlite_file(
        tmp_path, "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, "
        "blob BLOB); INSERT INTO Packages VALUES (1, x'00');"))
    damaged[100:4096] = b"\xff" * (4096 - 100)
    with pytest.raises(packages.InventoryError, match="x.sqlite"):
        rpmdb.sqlite_blobs(bytes(damaged), "x.sqlite", 100)
    text_blob = _sqlite_file(
        tmp_path, "DROP TABLE Packages; CREATE TABLE Packages (hnum "
        "INTEGER PRIMARY KEY, blob BLOB); INSERT INTO Packages VALUES "
        "(7, 'text');")
    with pytest.raises(packages.InventoryError,
                       match="package 7 has no header blob"):
        rpmdb.sqlite_blobs(text_blob, "x.sqlite", 100)


def test_sqlite_too_many_rows_refused(tmp_path):
    data = _sqlite_file(tmp_path, "CREATE TABLE Packages (hnum INTEGER "
                        "PRIMARY KEY, blob BLOB); " + " ".join(
                            "INSERT INTO Packages VALUES (%d, x'00');" % i
                            for i in range(1, 30)))
    with pytest.raises(packages.InventoryError,
                       match="lists more than 10 packages"):
        rpmdb.sqlite_blobs(data, "x.sqlite", 10)


@pytest.mark.parametrize("blob,needle", [
    (b"\0\0\0", "too short"),
    (struct.pack(">ii", 0x7fffffff, 0) + b"\0" * 8, "claims"),
    (struct.pack(">ii", 1, 4) + struct.pack(">iiii", 1000, 6, 100, 1) +
     b"abc\0", "points outside"),
    (struct.pack(">ii", 1, 3) + struct.pack(">iiii", 1000, 6, 0, 1) +
     b"abc", "no terminator"),
    (struct.pack(">ii", 1, 4) + struct.pack(">iiii", 1001, 6, 0, 1) +
     b"abc\0", "without NAME or VERSION"),
])
def test_corrupt_rpm_headers_refused(blob, needle):
    with pytest.raises(packages.InventoryError, match=needle):
        rpmheader.package(blob)


def _bdb_bytes(el9_db, tmp_path):
    path = tmp_path / "Packages"
    pkgdb.write_bdb(str(path), pkgdb.header_blobs(el9_db[1]))
    return bytearray(path.read_bytes())


def test_bdb_overflow_loop_and_bad_pages_refused(el9_db, tmp_path):
    data = _bdb_bytes(el9_db, tmp_path)
    pagesize = 4096
    # Make the first overflow page point to itself.
    first_ov = 5
    struct.pack_into("<I", data, first_ov * pagesize + 16, first_ov)
    struct.pack_into("<H", data, first_ov * pagesize + 22, 10)
    with pytest.raises(packages.InventoryError, match="loop|holds"):
        bdb.values(bytes(data), "Packages", 100)
    data = _bdb_bytes(el9_db, tmp_path)
    struct.pack_into("<I", data, 32, 100000)        # last page
    with pytest.raises(packages.InventoryError, match="claims"):
        bdb.values(bytes(data), "Packages", 100)
    data = _bdb_bytes(el9_db, tmp_path)
    data[1 * pagesize + 25] = 5                      # bucket page type
    with pytest.raises(packages.InventoryError, match="has type 5"):
        bdb.values(bytes(data), "Packages", 100)
    with pytest.raises(packages.InventoryError,
                       match="not a BerkeleyDB hash database"):
        bdb.values(b"\0" * 8192, "Packages", 100)


def test_ndb_checksum_and_slots_checked(el9_db, tmp_path):
    path = tmp_path / "Packages.db"
    pkgdb.write_ndb(str(path), [b for _n, b in
                                pkgdb.header_blobs(el9_db[1])])
    good = path.read_bytes()
    assert len(ndb.blobs(good, "p", 100)) == len(pkgdb.EL9_RPMS)
    bad = bytearray(good)
    bad[4096 + 40] ^= 0xFF                           # inside the 1st blob
    with pytest.raises(packages.InventoryError, match="checksum mismatch"):
        ndb.blobs(bytes(bad), "p", 100)
    bad = bytearray(good)
    struct.pack_into("<I", bad, 32 + 8, 10 ** 6)      # blkoff of slot 1
    with pytest.raises(packages.InventoryError, match="points to blocks"):
        ndb.blobs(bytes(bad), "p", 100)


# -- apk --

def test_apk_installed_database(file_tree):
    inv = _collect(file_tree({"/lib/apk/db/installed":
                              pkgdb.apk_installed()}))
    assert inv.error is None
    assert inv.format is packages.PackageFormat.APK
    assert _rows(inv) == sorted((name, version, arch) for
                                name, version, arch, _o, _l in
                                pkgdb.ALPINE_APKS)
    crypto = next(p for p in inv.packages if p.name == "libcrypto3")
    assert (crypto.version, crypto.release, crypto.source,
            crypto.license) == ("3.1.4", "r1", "openssl", "Apache-2.0")


def test_apk_corrupt_line_named():
    with pytest.raises(packages.InventoryError, match="line 2"):
        list(apk.records("P:musl\nnonsense\n", "/lib/apk/db/installed"))


# -- kernels and the engine --

def test_kernels_from_boot_and_modules(file_tree):
    tree = file_tree({
        "/boot/vmlinuz-6.1.0-18-amd64": b"k", "/boot/vmlinuz-6.1.0-17-amd64":
        b"k", "/boot/vmlinuz-0-rescue-0123abcd": b"k",
        "/boot/config-6.1.0-18-amd64": b"c",
        "/usr/lib/modules/6.1.0-18-amd64/modules.dep": b"",
        "/usr/lib/modules/6.2.0-1-amd64/modules.dep": b""},
        links=[("/lib", "usr/lib")])
    found = packages.collect(tree, "linux", MiB).kernels
    assert found == [
        packages.Kernel("6.1.0-17-amd64", "/boot/vmlinuz-6.1.0-17-amd64",
                        None),
        packages.Kernel("6.1.0-18-amd64", "/boot/vmlinuz-6.1.0-18-amd64",
                        "/lib/modules/6.1.0-18-amd64"),
        packages.Kernel("6.2.0-1-amd64", None, "/lib/modules/6.2.0-1-amd64")]


def test_no_database_is_a_note_not_an_error(file_tree):
    inv = _collect(file_tree({"/etc/hostname": "x\n"}))
    assert inv.error is None and inv.format is None
    assert inv.notes == ["no package database found (dpkg, rpm or apk)"]
