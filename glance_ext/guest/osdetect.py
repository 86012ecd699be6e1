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

"""Which operating system a guest tree holds, and its libosinfo short-id.

Linux: ``/etc/os-release`` (``/usr/lib/os-release``), with the release
files older distributions use as fallbacks. The short-id is what nova's
libosinfo lookup understands for ``os_distro`` (``ubuntu22.04``,
``rhel9.4``, ``debian12``, ``centos-stream9``, ``sle15sp5``), derived by
the naming rules of the osinfo database. Windows: the SOFTWARE registry
hive's ``CurrentVersion`` key (via libregf).
"""

import dataclasses
import re
import shlex
from typing import Dict, List, Optional

from glance_ext.guest import guesttree

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")


@dataclasses.dataclass
class OsIdentity:
    os_type: str                          # "linux", "windows" or "unknown"
    distro: Optional[str] = None          # os-release ID: ubuntu, rhel, ...
    version: Optional[str] = None
    product_name: Optional[str] = None
    osinfo_id: Optional[str] = None
    id_like: List[str] = dataclasses.field(default_factory=list)
    evidence: List[str] = dataclasses.field(default_factory=list)
    build: Optional[int] = None           # Windows build number


def parse_os_release(text: str) -> Dict[str, str]:
    """KEY=value lines with shell quoting, as os-release(5) specifies."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _sep, value = line.partition("=")
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip("\"'")]
        out[key.strip()] = parts[0] if parts else ""
    return out


def _major(version: str) -> str:
    return version.split(".")[0]


def osinfo_short_id(distro: str, version: Optional[str],
                    name: str = "") -> Optional[str]:
    """The libosinfo short-id for an os-release ID and VERSION_ID."""
    if not version:
        if distro == "opensuse-tumbleweed":
            return "opensusetumbleweed"
        if distro in ("fedora", "arch", "archlinux"):
            return {"fedora": "fedora-rawhide"}.get(distro, "archlinux")
        return None
    v = version.strip()
    if distro == "ubuntu":
        return "ubuntu" + v
    if distro == "debian":
        return "debian" + _major(v)
    if distro == "rhel":
        return "rhel" + (v if "." in v else v + ".0")
    if distro == "centos":
        if "stream" in name.lower():
            return "centos-stream" + _major(v)
        major = _major(v)
        return "centos" + (major if int_or_none(major, 0) >= 7 else v)
    if distro == "fedora":
        return "fedora" + v
    if distro in ("rocky", "almalinux"):
        return distro + _major(v)
    if distro == "opensuse-leap":
        return "opensuse" + v
    if distro in ("sles", "sled", "sle"):
        # SLE 15 merged server and desktop into one id; 12 and older keep
        # "sles"/"sled".
        major, _dot, minor = v.partition(".")
        prefix = "sle" if int_or_none(major) >= 15 else \
            ("sled" if distro == "sled" else "sles")
        return "%s%s%s" % (prefix, major, "sp" + minor
                           if minor and minor != "0" else "")
    if distro == "alpine":
        return "alpinelinux" + ".".join(v.split(".")[:2])
    if distro == "ol":
        return "ol" + v
    return None


def int_or_none(text: str, default: int = 0) -> int:
    try:
        return int(text)
    except ValueError:
        return default


_RELEASE_RE = re.compile(r"^(?P<name>.*?) release (?P<version>[\d.]+)")
_LEGACY_RELEASE_FILES = (
    ("/etc/redhat-release", {"centos": "centos", "red hat": "rhel",
                             "fedora": "fedora", "rocky": "rocky",
                             "alma": "almalinux"}),
)


def detect_linux(tree: guesttree.GuestTree) -> Optional[OsIdentity]:
    for path in OS_RELEASE_PATHS:
        text = tree.read_text(path, 64 * 1024)
        if text is None:
            continue
        fields = parse_os_release(text)
        distro = fields.get("ID", "linux").lower()
        version = fields.get("VERSION_ID") or None
        name = fields.get("NAME", "")
        ident = OsIdentity(
            "linux", distro, version,
            fields.get("PRETTY_NAME") or name or None,
            osinfo_short_id(distro, version, name),
            fields.get("ID_LIKE", "").split(), ["%s: ID=%s VERSION_ID=%s"
                                                % (path, distro, version)])
        if distro == "debian" and not version:
            # Debian testing/sid leave VERSION_ID out; debian_version says.
            dv = (tree.read_text("/etc/debian_version", 256) or "").strip()
            if dv[:1].isdigit():
                ident.version = dv
                ident.osinfo_id = osinfo_short_id("debian", dv)
                ident.evidence.append("/etc/debian_version: %s" % dv)
        return ident
    for path, names in _LEGACY_RELEASE_FILES:
        text = tree.read_text(path, 4096)
        if not text:
            continue
        match = _RELEASE_RE.match(text.strip())
        if not match:
            continue
        lowered = match.group("name").lower()
        distro = next((d for key, d in names.items() if key in lowered),
                      "linux")
        version = match.group("version")
        return OsIdentity("linux", distro, version, text.strip(),
                          osinfo_short_id(distro, version,
                                          match.group("name")),
                          [], ["%s: %s" % (path, text.strip())])
    dv = tree.read_text("/etc/debian_version", 256)
    if dv and dv.strip()[:1].isdigit():
        version = dv.strip()
        return OsIdentity("linux", "debian", version, "Debian " + version,
                          osinfo_short_id("debian", version), [],
                          ["/etc/debian_version: %s" % version])
    return None


def looks_like_linux_root(tree: guesttree.GuestTree) -> bool:
    """A filesystem that is a Linux root: /etc plus a userland."""
    return tree.exists("/etc") and (
        tree.exists("/etc/fstab") or
        any(tree.exists(p) for p in OS_RELEASE_PATHS)) and (
        tree.exists("/usr") or tree.exists("/bin"))
