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

"""Windows guests: identity from the SOFTWARE registry hive.

``Microsoft\\Windows NT\\CurrentVersion`` holds ProductName,
CurrentBuildNumber and InstallationType; the build number (not the
marketing name, which Windows 11 still reports as "Windows 10 ...") picks
the libosinfo short-id. libregf reads the hive through the guest tree's
bounded file object, so only the hive pages on the key path are read,
whatever the hive's size. Architecture comes from the PE header of
ntoskrnl.exe.
"""

import struct
from typing import Optional

import pyregf

from glance_ext.guest import guesttree
from glance_ext.guest.osdetect import OsIdentity

SYSTEM_ROOTS = ("/Windows", "/WINDOWS", "/windows", "/WinNT")
CURRENT_VERSION = "Microsoft\\Windows NT\\CurrentVersion"

# (build, server?) -> osinfo short-id; the highest build <= the guest's.
_SERVER = [(7600, "win2k8r2"), (9200, "win2k12"), (9600, "win2k12r2"),
           (14393, "win2k16"), (17763, "win2k19"), (20348, "win2k22"),
           (26100, "win2k25")]
_CLIENT = [(7600, "win7"), (9200, "win8"), (9600, "win8.1"),
           (10240, "win10"), (22000, "win11")]
_PE_MACHINES = {0x8664: "x86_64", 0xAA64: "aarch64", 0x14C: "i686"}


def system_root(tree: guesttree.GuestTree) -> Optional[str]:
    for root in SYSTEM_ROOTS:
        if tree.is_file(root + "/System32/config/SOFTWARE"):
            return root
    return None


def osinfo_short_id(build: Optional[int], server: bool) -> Optional[str]:
    if build is None:
        return None
    table = _SERVER if server else _CLIENT
    found = None
    for first, short in table:
        if build >= first:
            found = short
    return found


def _value(key, name: str):
    value = key.get_value_by_name(name)
    if value is None:
        return None
    if value.type == 4:
        return value.get_data_as_integer()
    try:
        return value.get_data_as_string()
    except (IOError, OSError, ValueError):
        return None


def detect(tree: guesttree.GuestTree) -> Optional[OsIdentity]:
    root = system_root(tree)
    if root is None:
        return None
    hive_path = root + "/System32/config/SOFTWARE"
    ident = OsIdentity("windows", "windows", evidence=[
        "%s present" % hive_path])
    hive = pyregf.file()
    try:
        hive.open_file_object(tree.open(hive_path))
        key = hive.get_key_by_path(CURRENT_VERSION)
    except (IOError, OSError, RuntimeError, ValueError) as exc:
        text = str(exc).strip().splitlines()
        ident.evidence.append("cannot read the SOFTWARE hive: %s"
                              % (text[-1] if text else exc))
        return ident
    if key is None:
        ident.evidence.append("SOFTWARE hive has no %s key"
                              % CURRENT_VERSION)
        return ident
    product = _value(key, "ProductName")
    build_text = _value(key, "CurrentBuildNumber") or \
        _value(key, "CurrentBuild")
    install_type = _value(key, "InstallationType") or ""
    major = _value(key, "CurrentMajorVersionNumber")
    minor = _value(key, "CurrentMinorVersionNumber")
    try:
        build = int(build_text) if build_text else None
    except ValueError:
        build = None
    server = install_type.lower().startswith("server") or \
        "server" in (product or "").lower()
    ident.product_name = product
    if isinstance(major, int) and isinstance(minor, int):
        ident.version = "%d.%d" % (major, minor)
    else:
        ident.version = _value(key, "CurrentVersion")
    ident.build = build
    ident.osinfo_id = osinfo_short_id(build, server)
    ident.evidence.append(
        "%s: ProductName=%r CurrentBuildNumber=%s InstallationType=%r"
        % (CURRENT_VERSION, product, build_text, install_type))
    return ident


def pe_architecture(header: bytes) -> Optional[str]:
    """The machine of a PE executable (MZ header, then PE\\0\\0)."""
    if len(header) < 64 or header[:2] != b"MZ":
        return None
    pe_offset, = struct.unpack("<I", header[60:64])
    if pe_offset + 6 > len(header) or \
            header[pe_offset:pe_offset + 4] != b"PE\0\0":
        return None
    machine, = struct.unpack("<H", header[pe_offset + 4:pe_offset + 6])
    return _PE_MACHINES.get(machine)
