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

"""apk's database: ``/lib/apk/db/installed`` (Alpine).

One record per installed package, records separated by a blank line,
each line ``X:value`` with a one-letter field (apk's "installed database"
format: ``P`` name, ``V`` version, ``A`` architecture, ``o`` origin, the
source package, ``L`` license, ``m`` maintainer; ``F``/``R`` lines list
the package's directories and files and are skipped here). apk keeps its
release in the version (``1.36.1-r5``); it is split off the way apk's
version rules put it, after the last ``-r``.
"""

from typing import Dict, Iterator, Optional

from glance_ext.guest import guesttree
from glance_ext.guest.packages import Budget
from glance_ext.guest.packages import Inventory
from glance_ext.guest.packages import InventoryError
from glance_ext.guest.packages import Package
from glance_ext.guest.packages import PackageFormat

PATHS = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")
WANTED = frozenset("PVAoLm")


def locate(tree: guesttree.GuestTree) -> Optional[str]:
    return next((p for p in PATHS if tree.is_file(p)), None)


def records(text: str, path: str) -> Iterator[Dict[str, str]]:
    record: Dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if record:
                yield record
            record = {}
            continue
        if len(line) < 2 or line[1] != ":":
            raise InventoryError("%s line %d is not an 'X:value' line: %r "
                                 "(the file is corrupt)"
                                 % (path, number, line[:80]))
        if line[0] in WANTED:
            record[line[0]] = line[2:]
    if record:
        yield record


def split_release(version: str):
    upstream, sep, release = version.rpartition("-r")
    if sep and release.isdigit():
        return upstream, "r" + release
    return version, None


def read(tree: guesttree.GuestTree, path: str, budget: Budget,
         inv: Inventory, max_packages: int) -> None:
    text = budget.read(tree, path).decode("utf-8", "replace")
    inv.format, inv.database = PackageFormat.APK, path
    for record in records(text, path):
        name, version = record.get("P"), record.get("V")
        if not name or not version:
            raise InventoryError("%s: a package record without P: or V: "
                                 "(the file is corrupt)" % path)
        upstream, release = split_release(version)
        inv.packages.append(Package(
            name=name, version=upstream, release=release,
            arch=record.get("A") or None, source=record.get("o") or name,
            source_version=version, license=record.get("L") or None))
        if len(inv.packages) > max_packages:
            return
