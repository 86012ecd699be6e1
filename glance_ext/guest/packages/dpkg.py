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

"""dpkg's database: ``/var/lib/dpkg/status``.

A deb822 text file (paragraphs separated by blank lines, ``Field: value``
lines, continuation lines indented), one paragraph per package dpkg knows
of. Only packages whose Status says ``installed`` are installed; the
others are removed packages with configuration left (``config-files``),
half-installed ones or mere selections, which ``dpkg -l`` shows as other
than ``ii`` and a scanner must not count. Written here rather than with
python-debian: that library reads the same format but pulls chardet and
its own apt bindings probing into the worker, for a 40-line parser.
"""

import re
from typing import Dict, Iterator, Optional

from glance_ext.guest import guesttree
from glance_ext.guest.packages import Budget
from glance_ext.guest.packages import Inventory
from glance_ext.guest.packages import InventoryError
from glance_ext.guest.packages import Package
from glance_ext.guest.packages import PackageFormat

STATUS = "/var/lib/dpkg/status"
_SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?\s*$")
_FIELD = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]?(.*)$")


def locate(tree: guesttree.GuestTree) -> Optional[str]:
    return STATUS if tree.is_file(STATUS) else None


def paragraphs(text: str) -> Iterator[Dict[str, str]]:
    """The paragraphs of a deb822 file, as {field (lower case): value}."""
    para: Dict[str, str] = {}
    last = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if para:
                yield para
            para, last = {}, None
            continue
        if line[0] in " \t":
            if last is None:
                raise InventoryError("%s line %d: a continuation line with "
                                     "no field before it" % (STATUS, number))
            para[last] += "\n" + line.strip()
            continue
        match = _FIELD.match(line)
        if match is None:
            raise InventoryError("%s line %d is not a 'Field: value' line: "
                                 "%r (the file is corrupt)"
                                 % (STATUS, number, line[:80]))
        last = match.group(1).lower()
        para[last] = match.group(2).strip()
    if para:
        yield para


def split_version(text: str):
    """``[epoch:]upstream[-revision]`` -> (epoch, upstream, revision)."""
    epoch = None
    head, sep, rest = text.partition(":")
    if sep and head.isdigit():
        epoch, text = int(head), rest
    upstream, sep, revision = text.rpartition("-")
    if not sep:
        return epoch, text, None
    return epoch, upstream, revision


def read(tree: guesttree.GuestTree, path: str, budget: Budget,
         inv: Inventory, max_packages: int) -> None:
    data = budget.read(tree, path)
    inv.format, inv.database = PackageFormat.DPKG, path
    text = data.decode("utf-8", "replace")
    for para in paragraphs(text):
        status = para.get("status", "").split()
        if len(status) != 3 or status[2] != "installed":
            continue
        name, version = para.get("package"), para.get("version")
        if not name or not version:
            raise InventoryError("%s: an installed package without Package "
                                 "or Version field (the file is corrupt)"
                                 % path)
        epoch, upstream, revision = split_version(version)
        source, source_version = name, version
        match = _SOURCE.match(para.get("source", ""))
        if match:
            source = match.group("name")
            source_version = match.group("version") or version
        inv.packages.append(Package(
            name=name, version=upstream, release=revision, epoch=epoch,
            arch=para.get("architecture"), source=source,
            source_version=source_version))
        if len(inv.packages) > max_packages:
            return
