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

"""libguestfs ``virt-inspector`` as the reference, for the slow tests and
the benchmark: its OS identity and its application list.

virt-inspector boots a libguestfs appliance; here only with the direct
backend and TCG (``LIBGUESTFS_BACKEND=direct``,
``LIBGUESTFS_BACKEND_SETTINGS=force_tcg``), about 20-60 s per image.
Applications come back as epoch/version/release fields; ``evr`` rebuilds
the version string the package manager prints, the form the engine's
``Package.evr`` has, so the two lists compare as sets of (name, version).
"""

import dataclasses
import glob
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Tuple


@dataclasses.dataclass
class Result:
    elapsed: float
    identity: Dict[str, Optional[str]]
    applications: List[Tuple[str, str]]
    error: Optional[str] = None


def missing() -> Optional[str]:
    """What virt-inspector lacks here, or None."""
    if shutil.which("virt-inspector") is None:
        return ("virt-inspector is not installed (Debian package "
                "libguestfs-tools, about 1.1 GB)")
    # supermin builds the appliance around a kernel of this machine
    # (SUPERMIN_KERNEL, /lib/modules/*/vmlinuz or /boot/vmlinuz-*); a
    # container or microVM has none, and installing libguestfs-tools
    # without recommends does not bring one.
    if not (os.environ.get("SUPERMIN_KERNEL") or
            glob.glob("/boot/vmlinuz-*") or
            glob.glob("/lib/modules/*/vmlinuz")):
        return ("libguestfs has no kernel for its appliance (supermin "
                "looks in /boot): Debian package linux-image-amd64 "
                "(tools/install-system-deps.sh --slow)")
    return None


def _text(el, tag: str) -> Optional[str]:
    found = el.find(tag)
    return found.text if found is not None and found.text else None


def evr(app) -> str:
    epoch = _text(app, "epoch")
    text = _text(app, "version") or ""
    release = _text(app, "release")
    if release:
        text += "-" + release
    if epoch and epoch != "0":
        text = "%s:%s" % (epoch, text)
    return text


def run(path: str, disk_format: str, applications: bool = True,
        timeout: float = 900) -> Result:
    env = dict(os.environ, LIBGUESTFS_BACKEND="direct",
               LIBGUESTFS_BACKEND_SETTINGS="force_tcg")
    fmt = {"vhd": "vpc"}.get(disk_format, disk_format)
    cmd = ["virt-inspector", "--format=%s" % fmt, "-a", path]
    if not applications:
        cmd.insert(1, "--no-applications")
    start = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         timeout=timeout)
    elapsed = time.monotonic() - start
    if out.returncode != 0 or not out.stdout.strip():
        return Result(elapsed, {}, [], out.stderr.strip()[-500:])
    osel = ET.fromstring(out.stdout).find("operatingsystem")
    if osel is None:
        return Result(elapsed, {}, [], "no operating system found")
    identity = {"distro": _text(osel, "distro"),
                "version": "%s.%s" % (_text(osel, "major_version"),
                                      _text(osel, "minor_version")),
                "osinfo": _text(osel, "osinfo"),
                "arch": _text(osel, "arch"), "root": _text(osel, "root")}
    apps = []
    windows = identity["distro"] == "windows" or \
        _text(osel, "name") == "windows"
    for app in osel.iter("application"):
        if windows:
            name = _text(app, "display_name") or _text(app, "name")
            apps.append((name or "", _text(app, "version") or ""))
        else:
            apps.append((_text(app, "name") or "", evr(app)))
    return Result(elapsed, identity, sorted(apps))
