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

"""What is installed in a guest: its packages and kernels.

The inventory is read from the guest's own package databases — dpkg's
status file, the rpm database (SQLite, BerkeleyDB or ndb), apk's installed
database, the Windows SOFTWARE hive's Uninstall keys — through the same
bounded guest tree as everything else: no boot, no mount, no package
manager of the host. Each database is read whole into memory, so each is
checked against what is left of one inventory budget BEFORE it is read; a
larger database is refused with its size, never read in part (a partial
list would look like a complete one).

One small module per database format; this module picks the formats to
try from what the guest has, and holds the dataclasses the report is made
of.
"""

import dataclasses
import enum
from typing import Any, Dict, List, Optional

from glance_ext.guest import guesttree
from glance_ext.exceptions import InventoryError

MiB = 1024 * 1024


class PackageFormat(str, enum.Enum):
    """Which database an inventory was read from (its purl type follows)."""

    DPKG = "dpkg"
    RPM_SQLITE = "rpm-sqlite"
    RPM_BDB = "rpm-bdb"
    RPM_NDB = "rpm-ndb"
    APK = "apk"
    WINDOWS = "windows-registry"


@dataclasses.dataclass(frozen=True)
class Package:
    """One installed package, in its package manager's own terms.

    ``version`` is the upstream version and ``release`` the distribution's
    part (dpkg's revision, rpm's release, apk's ``-rN``), so that the full
    version a scanner compares (``evr``) is rebuilt the manager's way.
    """

    name: str
    version: str
    release: Optional[str] = None
    epoch: Optional[int] = None
    arch: Optional[str] = None
    source: Optional[str] = None          # source package (dpkg, rpm, apk)
    source_version: Optional[str] = None
    vendor: Optional[str] = None          # rpm Vendor, Windows Publisher
    license: Optional[str] = None

    @property
    def evr(self) -> str:
        """The full version as the package manager prints it."""
        text = self.version
        if self.release:
            text += "-" + self.release
        if self.epoch:
            text = "%d:%s" % (self.epoch, text)
        return text

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Package":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


@dataclasses.dataclass(frozen=True)
class Kernel:
    """A kernel the guest can boot, and where it was seen."""

    version: str
    image: Optional[str] = None           # /boot/vmlinuz-<version>
    modules: Optional[str] = None         # /lib/modules/<version>

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Inventory:
    """The result of one inventory: packages, kernels, and what went wrong.

    ``error`` set means the package list is NOT to be trusted (a database
    was refused or corrupt); ``packages`` is then empty rather than a
    partial list.
    """

    format: Optional[PackageFormat] = None
    database: Optional[str] = None
    packages: List[Package] = dataclasses.field(default_factory=list)
    kernels: List[Kernel] = dataclasses.field(default_factory=list)
    error: Optional[str] = None
    bytes_read: int = 0
    notes: List[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {"format": self.format.value if self.format else None,
                "database": self.database, "count": len(self.packages),
                "items": [p.to_dict() for p in self.packages],
                "kernels": [k.to_dict() for k in self.kernels],
                "error": self.error, "bytes_read": self.bytes_read,
                "notes": list(self.notes)}


class Budget:
    """What is left of the inventory's read budget, in bytes.

    Every database is stat'ed first and refused when it is larger than
    what remains: the disk's own budget would stop the read anyway, but
    only after reading megabytes for nothing, and with a less useful
    message.
    """

    def __init__(self, total_bytes: int) -> None:
        self.total = total_bytes
        self.used = 0

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.used)

    def read(self, tree: guesttree.GuestTree, path: str) -> bytes:
        """The whole of one guest file, if it fits; InventoryError if not."""
        try:
            st = tree.stat(path)
        except guesttree.GuestPathError as exc:
            raise InventoryError("cannot read %s: %s" % (path, exc))
        if st is None or st.kind != "file":
            raise InventoryError("%s is not a regular file" % path)
        if st.size > self.remaining:
            raise InventoryError(
                "%s is %.1f MiB, more than the %.1f MiB left of the "
                "inventory budget (option [glance_ext_guest] "
                "inventory_budget_mb); the package list was not read"
                % (path, st.size / MiB, self.remaining / MiB))
        try:
            data = tree.read(path, max_bytes=st.size)
        except guesttree.GuestPathError as exc:
            raise InventoryError("cannot read %s: %s" % (path, exc))
        self.used += len(data)
        return data


def collect(tree: guesttree.GuestTree, os_type: str,
            budget_bytes: int, max_packages: int = 100000,
            windows_root: Optional[str] = None) -> Inventory:
    """The inventory of a mounted guest tree (never raises for the image).

    The first database the guest has wins, in the order its package
    manager would use it: a guest with both dpkg and rpm databases (rare:
    alien) is inventoried by the one of its family, and the other noted.
    """
    from glance_ext.guest.packages import apk
    from glance_ext.guest.packages import dpkg
    from glance_ext.guest.packages import kernels
    from glance_ext.guest.packages import rpmdb
    from glance_ext.guest.packages import winapps

    inv = Inventory()
    budget = Budget(budget_bytes)
    try:
        if os_type == "windows":
            if windows_root:
                winapps.read(tree, windows_root, inv, max_packages)
        else:
            found = [(mod, path) for mod in (dpkg, rpmdb, apk)
                     for path in [mod.locate(tree)] if path]
            if found:
                mod, path = found[0]
                mod.read(tree, path, budget, inv, max_packages)
                for _other, other in found[1:]:
                    inv.notes.append("%s also exists; the inventory is "
                                     "from %s" % (other, path))
            else:
                inv.notes.append("no package database found (dpkg, rpm "
                                 "or apk)")
            inv.kernels = kernels.find(tree)
    except InventoryError as exc:
        inv.error = str(exc)
        inv.packages = []
    inv.bytes_read = budget.used
    if len(inv.packages) > max_packages:
        inv.error = ("the package database lists more than %d packages"
                     % max_packages)
        inv.packages = []
    return inv
