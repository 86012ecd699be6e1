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

"""Which virtio drivers a Windows guest has.

Without ``viostor``/``vioscsi`` a Windows guest on a virtio disk stops with
INACCESSIBLE_BOOT_DEVICE; without ``netkvm`` it has no network. Two places
tell, read from the mounted guest tree during the one inspection pass:

* ``System32/drivers/viostor.sys`` or ``vioscsi.sys``: a storage driver is
  *installed*. Only an installed driver can load for the boot disk; one
  merely staged in the DriverStore is not enough.
* ``System32/drivers/netkvm.sys`` or a ``netkvm.inf_*`` package in
  ``System32/DriverStore/FileRepository``: Plug and Play installs a staged
  network driver when the device appears at first boot.

The result is ``{"storage": bool|None, "storage_bus": "virtio"|"scsi"|None,
"network": bool|None, "evidence": [...], "error": str|None}``; None means
it could not be told.
"""

from typing import Any, Dict, Optional

STORAGE_DRIVERS = {"viostor.sys": "virtio", "vioscsi.sys": "scsi"}
NETWORK_DRIVER = "netkvm.sys"
NETWORK_PACKAGE_PREFIX = "netkvm.inf_"


def unknown(reason: str) -> Dict[str, Any]:
    return {"storage": None, "network": None, "storage_bus": None,
            "evidence": [], "error": reason}


def find_drivers(tree, system_root: str) -> Dict[str, Any]:
    """Decide from a mounted guest tree (pure: unit-testable)."""
    drivers_dir = system_root + "/System32/drivers"
    repo_dir = system_root + "/System32/DriverStore/FileRepository"
    if not tree.exists(drivers_dir):
        # Every Windows installation has it; without it nothing can be told.
        return unknown("%s does not exist" % drivers_dir)
    installed = {n.lower() for n in tree.listdir(drivers_dir)}
    staged = [n.lower() for n in tree.listdir(repo_dir)]
    evidence = []
    storage_bus: Optional[str] = None
    for name, bus in STORAGE_DRIVERS.items():
        if name in installed:
            evidence.append("%s/%s installed" % (drivers_dir, name))
            storage_bus = storage_bus or bus
    network = NETWORK_DRIVER in installed
    if network:
        evidence.append("%s/%s installed" % (drivers_dir, NETWORK_DRIVER))
    packages = [n for n in staged if n.startswith(NETWORK_PACKAGE_PREFIX)]
    if packages:
        network = True
        evidence.append("%s/%s staged" % (repo_dir, packages[0]))
    if storage_bus is None:
        evidence.append("no viostor.sys or vioscsi.sys in %s" % drivers_dir)
    if not network:
        evidence.append("no netkvm driver installed or staged")
    return {"storage": storage_bus is not None, "storage_bus": storage_bus,
            "network": network, "evidence": evidence, "error": None}
