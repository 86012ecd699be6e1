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

"""Nova properties discovered from a guest inspection report.

Only what the report states is mapped; an unknown field sets nothing
(nova's defaults then apply), never a guess.
"""

import dataclasses
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from glance_ext.injection import facts as facts_mod

PREFIX = "glance_ext_inject_"
CHECK_PREFIX = PREFIX + "check_"
CHECKS_FAILED = PREFIX + "checks_failed"


def check_property(check_id: str) -> str:
    """``cloud-init`` -> ``glance_ext_inject_check_cloud_init``."""
    return CHECK_PREFIX + check_id.replace("-", "_")


@dataclasses.dataclass(frozen=True)
class Settings:
    enabled: FrozenSet[str]
    os_distro_style: str = "osinfo"
    uefi_machine_type: str = "q35"
    windows_disk_bus: str = "sata"
    windows_vif_model: str = "e1000"


def discover(report: Dict[str, Any], settings: Settings,
             drivers: Optional[Dict[str, Any]] = None
             ) -> Tuple[Dict[str, str], List[str]]:
    """(properties, notes) for a ``GuestReport.to_dict()``."""
    on = settings.enabled
    props: Dict[str, str] = {}
    notes: List[str] = []
    osd = report.get("os") or {}
    os_type = osd.get("os_type")
    if "os_type" in on and os_type in ("linux", "windows"):
        props["os_type"] = os_type
    if "os_distro" in on:
        distro = _os_distro(osd, settings.os_distro_style)
        if distro:
            props["os_distro"] = distro
    if "os_version" in on and osd.get("version"):
        props["os_version"] = str(osd["version"])
    arch = report.get("architecture")
    if "hw_architecture" in on and arch:
        props["hw_architecture"] = arch
    firmware = report.get("firmware")
    # "both": the disk boots either way; nova's default (BIOS) is fine.
    if "hw_firmware_type" in on and firmware in ("uefi", "bios"):
        props["hw_firmware_type"] = firmware
    if "hw_machine_type" in on and firmware == "uefi":
        if arch == "aarch64":
            props["hw_machine_type"] = "virt"
        elif arch in ("x86_64", "i686") and settings.uefi_machine_type:
            props["hw_machine_type"] = settings.uefi_machine_type
    checks = report.get("checks") or []
    if "hw_qemu_guest_agent" in on:
        agent = next((c for c in checks if c["id"] == "qemu-guest-agent"),
                     None)
        if agent is not None and agent["status"] == "pass":
            props["hw_qemu_guest_agent"] = "true"
    if "checks" in on and checks:
        for check in checks:
            props[check_property(check["id"])] = check["status"]
        failed = [c["id"] for c in checks if c["status"] == "fail"]
        props[CHECKS_FAILED] = ",".join(failed) if failed else "none"
    if "windows_drivers" in on and os_type == "windows":
        props.update(_windows_devices(drivers, settings, notes))
    return props, notes


def _os_distro(osd: Dict[str, Any], style: str) -> Optional[str]:
    family = facts_mod.family_of(osd.get("distro"), osd.get("id_like"))
    if style == "osinfo":
        return osd.get("osinfo_id") or family
    return family


def _windows_devices(drivers: Optional[Dict[str, Any]], settings: Settings,
                     notes: List[str]) -> Dict[str, str]:
    if not drivers or drivers.get("error"):
        notes.append("virtio drivers of the Windows guest unknown (%s); "
                     "hw_disk_bus and hw_vif_model left to nova"
                     % ((drivers or {}).get("error") or "not probed"))
        return {}
    props = {}
    if drivers.get("storage") is False:
        props["hw_disk_bus"] = settings.windows_disk_bus
    elif drivers.get("storage_bus") == "scsi":
        # vioscsi only: the disk must be on a virtio-scsi controller.
        props["hw_disk_bus"] = "scsi"
        props["hw_scsi_model"] = "virtio-scsi"
    if drivers.get("network") is False:
        props["hw_vif_model"] = settings.windows_vif_model
    return props
