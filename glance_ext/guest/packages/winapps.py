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

"""Windows installed programs: the SOFTWARE hive's Uninstall keys.

What "Programs and Features" lists: one subkey per program under
``Microsoft\\Windows\\CurrentVersion\\Uninstall`` (64-bit and native) and
``WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall`` (32-bit
programs on 64-bit Windows), with DisplayName, DisplayVersion and
Publisher. Subkeys without a DisplayName are updates and components that
Windows itself does not list, so they are skipped. libregf reads the hive
through the bounded guest tree, as for the OS identity: only the hive
pages of these keys are read.
"""

import pyregf

from glance_ext.guest import guesttree
from glance_ext.guest import windows
from glance_ext.guest.packages import Inventory
from glance_ext.guest.packages import InventoryError
from glance_ext.guest.packages import Package
from glance_ext.guest.packages import PackageFormat

UNINSTALL = (("Microsoft\\Windows\\CurrentVersion\\Uninstall", None),
             ("WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
              "x86"))


def read(tree: guesttree.GuestTree, system_root: str, inv: Inventory,
         max_packages: int) -> None:
    path = system_root + "/System32/config/SOFTWARE"
    hive = pyregf.file()
    try:
        hive.open_file_object(tree.open(path))
    except (IOError, OSError, RuntimeError, ValueError,
            guesttree.GuestPathError) as exc:
        raise InventoryError("cannot read the SOFTWARE hive %s: %s"
                             % (path, _short(exc)))
    inv.format, inv.database = PackageFormat.WINDOWS, path
    try:
        for key_path, arch in UNINSTALL:
            key = hive.get_key_by_path(key_path)
            if key is None:
                continue
            count = key.get_number_of_sub_keys()
            if count > max_packages:
                raise InventoryError("%s\\%s has %d subkeys, more than %d"
                                     % (path, key_path, count, max_packages))
            for index in range(count):
                sub = key.get_sub_key(index)
                name = windows._value(sub, "DisplayName")
                if not isinstance(name, str) or not name.strip():
                    continue
                version = windows._value(sub, "DisplayVersion")
                publisher = windows._value(sub, "Publisher")
                inv.packages.append(Package(
                    name=name.strip(),
                    version=version.strip() if isinstance(version, str)
                    else "",
                    arch=arch, source=sub.get_name(),
                    vendor=publisher.strip() if isinstance(publisher, str)
                    and publisher.strip() else None))
    except (IOError, OSError, RuntimeError, ValueError) as exc:
        raise InventoryError("the SOFTWARE hive's Uninstall keys cannot be "
                             "read: %s" % _short(exc))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else exc.__class__.__name__
