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

"""rpm's databases: SQLite (EL9, Fedora 33+), BerkeleyDB (EL7/8), ndb (SUSE).

rpm 4.16 moved to SQLite (``rpmdb.sqlite``: one ``Packages`` table of
``hnum, blob``); EL8 and older keep a BerkeleyDB hash database
(``Packages``, see ``bdb``), SUSE 15 rpm's own ndb format
(``Packages.db``, see ``ndb``). Fedora 36+ and SUSE keep them in
``/usr/lib/sysimage/rpm`` with ``/var/lib/rpm`` a link to it; the guest
tree resolves such links inside the guest. Every format yields the same
header blobs, decoded by ``rpmheader``.

The SQLite file is read whole (within the inventory budget) and opened
from memory with ``sqlite3`` (``deserialize``): no copy on the host's
disk, no host path for SQLite to follow. A crafted database is bounded by
a progress handler (SQLite steps), SQLite's defensive mode where Python
exposes it, and by running only one fixed query on a table that must be a
table (not a view that could compute anything).
"""

import os
import posixpath
import sqlite3
import tempfile
from typing import List, Optional

from glance_ext.guest import guesttree
from glance_ext.guest.packages import Budget
from glance_ext.guest.packages import Inventory
from glance_ext.guest.packages import InventoryError
from glance_ext.guest.packages import PackageFormat
from glance_ext.guest.packages import rpmheader

DIRS = ("/usr/lib/sysimage/rpm", "/var/lib/rpm")
FILES = (("rpmdb.sqlite", PackageFormat.RPM_SQLITE),
         ("Packages.db", PackageFormat.RPM_NDB),
         ("Packages", PackageFormat.RPM_BDB))
SQLITE_MAGIC = b"SQLite format 3\0"
# SQLite virtual-machine steps between progress callbacks, and the most
# callbacks one query may take (about 10^9 steps: seconds, not minutes).
_PROGRESS_STEPS = 10000
_PROGRESS_MAX_CALLS = 100000


def locate(tree: guesttree.GuestTree) -> Optional[str]:
    for name, _fmt in FILES:
        for d in DIRS:
            path = "%s/%s" % (d, name)
            if tree.is_file(path):
                return path
    return None


def _format_of(path: str) -> PackageFormat:
    base = posixpath.basename(path)
    return next(fmt for name, fmt in FILES if name == base)


def read(tree: guesttree.GuestTree, path: str, budget: Budget,
         inv: Inventory, max_packages: int) -> None:
    fmt = _format_of(path)
    data = budget.read(tree, path)
    inv.format, inv.database = fmt, path
    if fmt is PackageFormat.RPM_SQLITE:
        blobs = sqlite_blobs(data, path, max_packages)
        wal = path + "-wal"
        try:
            st = tree.stat(wal)
        except guesttree.GuestPathError:
            st = None
        if st is not None and st.size > 0:
            inv.notes.append(
                "%s holds %d bytes rpm did not checkpoint: packages "
                "installed last may be missing from the list"
                % (wal, st.size))
    elif fmt is PackageFormat.RPM_BDB:
        from glance_ext.guest.packages import bdb
        blobs = bdb.values(data, path, max_packages)
    else:
        from glance_ext.guest.packages import ndb
        blobs = ndb.blobs(data, path, max_packages)
    for blob in blobs:
        try:
            inv.packages.append(rpmheader.package(blob))
        except InventoryError as exc:
            raise InventoryError("%s: %s" % (path, exc))


def _connect(data: bytes) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    if hasattr(conn, "deserialize"):
        conn.deserialize(data)
        return conn
    # Python 3.10 has no deserialize: a private copy, opened read-only.
    conn.close()
    tmpdir = tempfile.mkdtemp(prefix="glance-ext-rpmdb-")
    copy = os.path.join(tmpdir, "rpmdb.sqlite")
    with open(copy, "wb") as fh:
        fh.write(data)
    conn = sqlite3.connect("file:%s?mode=ro&immutable=1" % copy, uri=True)
    os.unlink(copy)
    os.rmdir(tmpdir)
    return conn


def sqlite_blobs(data: bytes, path: str, max_packages: int) -> List[bytes]:
    """The header blobs of an rpmdb.sqlite image held in memory."""
    if not data.startswith(SQLITE_MAGIC) or len(data) < 100:
        raise InventoryError("%s is not an SQLite database (corrupt)"
                             % path)
    # A WAL-mode file (bytes 18/19 = 2) cannot be opened from memory:
    # marking the copy as rollback-journal mode reads the same pages.
    if data[18] == 2 and data[19] == 2:
        data = data[:18] + b"\x01\x01" + data[20:]
    calls = [0]

    def progress() -> int:
        calls[0] += 1
        return 1 if calls[0] > _PROGRESS_MAX_CALLS else 0

    try:
        conn = _connect(data)
    except sqlite3.Error as exc:
        raise InventoryError("%s cannot be opened by SQLite: %s"
                             % (path, exc))
    try:
        defensive = getattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE", None)
        if defensive is not None:
            conn.setconfig(defensive, True)
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA query_only = ON")
        conn.set_progress_handler(progress, _PROGRESS_STEPS)
        row = conn.execute("SELECT type FROM sqlite_master WHERE "
                           "name = 'Packages'").fetchone()
        if row is None or row[0] != "table":
            raise InventoryError("%s has no Packages table (not an rpm "
                                 "database, or corrupt)" % path)
        rows = conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum "
                            "LIMIT ?", (max_packages + 1,)).fetchall()
    except sqlite3.Error as exc:
        if calls[0] > _PROGRESS_MAX_CALLS:
            raise InventoryError("%s: reading the Packages table took more "
                                 "than %d SQLite steps (a crafted "
                                 "database?)" % (path, _PROGRESS_STEPS *
                                                 _PROGRESS_MAX_CALLS))
        raise InventoryError("%s is not a readable rpm database: %s"
                             % (path, exc))
    finally:
        conn.close()
    if len(rows) > max_packages:
        raise InventoryError("%s lists more than %d packages"
                             % (path, max_packages))
    blobs = []
    for hnum, blob in rows:
        if not isinstance(blob, bytes):
            raise InventoryError("%s: package %s has no header blob "
                                 "(corrupt)" % (path, hnum))
        blobs.append(blob)
    return blobs
