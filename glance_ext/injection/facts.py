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

"""What is known about one import, for rule conditions and templates.

One flat record built from the guest report, the image and the request
context, so that rules and templates never reach into the report's
structure (which belongs to the guest engine and may grow).
"""

import dataclasses
from typing import Any, Dict, FrozenSet, Optional

# os-release ID -> the family names of Glance's os_distro documentation
# (also in the metadefs catalog). IDs not listed keep their own name when
# the catalog has it (e.g. rocky), else the family of ID_LIKE.
FAMILY_BY_ID = {
    "ubuntu": "ubuntu", "debian": "debian", "rhel": "rhel",
    "centos": "centos", "fedora": "fedora", "opensuse-leap": "opensuse",
    "opensuse-tumbleweed": "opensuse", "opensuse": "opensuse",
    "sles": "sled", "sled": "sled", "rocky": "rocky", "arch": "arch",
    "gentoo": "gentoo", "freebsd": "freebsd", "windows": "windows",
}


def family_of(distro: Optional[str], id_like=()) -> Optional[str]:
    """The Glance family name for an os-release ID (None if unknown)."""
    if not distro:
        return None
    if distro in FAMILY_BY_ID:
        return FAMILY_BY_ID[distro]
    for like in id_like or ():
        if like in FAMILY_BY_ID:
            return FAMILY_BY_ID[like]
    return None


@dataclasses.dataclass(frozen=True)
class Facts:
    os_type: Optional[str] = None        # linux | windows | None
    distro: Optional[str] = None         # os-release ID (or "windows")
    family: Optional[str] = None         # Glance family name
    osinfo_id: Optional[str] = None      # libosinfo short-id
    version: Optional[str] = None
    product_name: Optional[str] = None
    architecture: Optional[str] = None
    firmware: Optional[str] = None       # uefi | bios | both | None
    disk_format: Optional[str] = None
    project: Optional[str] = None
    roles: FrozenSet[str] = frozenset()
    visibility: Optional[str] = None

    @classmethod
    def build(cls, report: Optional[Dict[str, Any]], disk_format: str,
              project: Optional[str] = None, roles=(),
              visibility: Optional[str] = None) -> "Facts":
        report = report or {}
        osd = report.get("os") or {}
        os_type = osd.get("os_type")
        return cls(os_type=os_type if os_type in ("linux", "windows")
                   else None,
                   distro=osd.get("distro"),
                   family=family_of(osd.get("distro"), osd.get("id_like")),
                   osinfo_id=osd.get("osinfo_id"),
                   version=osd.get("version"),
                   product_name=osd.get("product_name"),
                   architecture=report.get("architecture"),
                   firmware=report.get("firmware"),
                   disk_format=disk_format, project=project,
                   roles=frozenset(r for r in roles or () if r),
                   visibility=visibility)

    def variables(self) -> Dict[str, Optional[str]]:
        """The names templates may use (``{os.distro}``) and their values."""
        return {
            "os.type": self.os_type, "os.distro": self.distro,
            "os.family": self.family, "os.osinfo_id": self.osinfo_id,
            "os.version": self.version, "os.product_name": self.product_name,
            "architecture": self.architecture, "firmware": self.firmware,
            "disk_format": self.disk_format, "project": self.project,
            "visibility": self.visibility,
        }


TEMPLATE_VARIABLES = tuple(sorted(Facts().variables()))
