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

"""Our guest inspection against libguestfs ``virt-inspector`` (slow).

Proves that, on the same generated images, the engine reports the same OS
identity as libguestfs (distribution, version, libosinfo short-id,
architecture) and the same mountpoints. virt-inspector boots an appliance
(here only with the direct backend and TCG: about a minute per image), so
these tests are marked ``slow``; they skip when libguestfs cannot run
(no libguestfs-tools, or no kernel for its appliance) and fail so under
``CI=true``.
Run: ``pytest -m slow tests/functional/guest``.
"""

import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from glance_ext import testing
from glance_ext.guest import inspect_guest
from glance_ext.testing.guest import disks
from glance_ext.testing.guest import virt_inspector

pytestmark = [pytest.mark.slow]


def _need_virt_inspector():
    why = virt_inspector.missing()
    testing.needs(why)


def _virt_inspector(path: str, fmt: str) -> ET.Element:
    env = dict(os.environ, LIBGUESTFS_BACKEND="direct",
               LIBGUESTFS_BACKEND_SETTINGS="force_tcg")
    # --no-applications: identity only here; the package lists are
    # compared in test_dib_images.py.
    out = subprocess.run(["virt-inspector", "--no-applications",
                          "--format=%s" % fmt, "-a", path],
                         capture_output=True, text=True, env=env,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    osel = ET.fromstring(out.stdout).find("operatingsystem")
    assert osel is not None, out.stdout
    return osel


@pytest.mark.parametrize("name,container", [
    ("ubuntu-gpt", "qcow2-zstd"),
    ("rhel-lvm", "raw"),
    ("debian-mbr", "vmdk-stream"),
    ("win2k22-gpt", "vhdx"),
])
def test_same_identity_as_virt_inspector(name, container):
    _need_virt_inspector()
    spec = disks.SPECS[name]
    if spec.root_fs == "ntfs" and disks.ntfs_missing():
        testing.needs(disks.ntfs_missing())
    path = disks.image(spec, container)
    fmt = disks.disk_format_of(container)
    ours = inspect_guest(path, fmt)
    assert ours.ok, ours["error"]
    peer = _virt_inspector(path, {"vhd": "vpc"}.get(fmt, fmt))
    assert peer.findtext("name") == ours.os["os_type"]
    assert peer.findtext("distro") == ours.os["distro"]
    assert peer.findtext("osinfo") == ours.os["osinfo_id"]
    assert peer.findtext("arch") == ours["architecture"]
    major, _dot, minor = ours.os["version"].partition(".")
    assert peer.findtext("major_version") == major
    assert peer.findtext("minor_version") == (minor or "0").lstrip("0") \
        or "0"
    # Same mountpoints (libguestfs names devices /dev/sdaN or /dev/VG/LV).
    peer_mounts = sorted(m.text for m in peer.iter("mountpoint"))
    ours_mounts = sorted(p["mountpoint"] for p in ours["partitions"]
                         if p["mountpoint"])
    assert peer_mounts == ours_mounts
    # And the same root filesystem UUID.
    root_dev = peer.findtext("root")
    peer_uuid = [f.findtext("uuid") for f in peer.iter("filesystem")
                 if f.get("dev") == root_dev]
    assert peer_uuid == [ours["root"]["fs_uuid"]]
