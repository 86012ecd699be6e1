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

"""Windows test disks with and without virtio drivers.

The guest builders (glance_ext/testing/guest/disks.py) make Windows system volumes
without drivers; these variants add ``System32/drivers`` (always present on
a real Windows) and, as asked, the virtio driver files, then build the same
GPT layout through the same builder. Cached next to the other guest
images; needs ntfs-3g and /dev/fuse like them.
"""

import os
from typing import Sequence
from unittest import mock

from glance_ext.testing.guest import disks
from glance_ext.testing.guest import trees

VARIANTS = {
    # name: (installed drivers, staged driver packages)
    "win2k22-novirtio": ((), ()),
    "win2k22-virtio": (("viostor.sys", "netkvm.sys"),
                       ("viostor.inf_amd64_0123456789abcdef",
                        "netkvm.inf_amd64_fedcba9876543210")),
    "win2k22-vioscsi-staged-net": (("vioscsi.sys",),
                                   ("netkvm.inf_amd64_fedcba9876543210",)),
}


def _add_drivers(root: str, installed: Sequence[str],
                 staged: Sequence[str]) -> None:
    system32 = os.path.join(root, "Windows", "System32")
    drivers = os.path.join(system32, "drivers")
    os.makedirs(drivers, exist_ok=True)
    for name in ("disk.sys", "storport.sys", "tcpip.sys") + tuple(installed):
        with open(os.path.join(drivers, name), "wb") as fh:
            fh.write(trees.pe_stub(subsystem=1))
    repo = os.path.join(system32, "DriverStore", "FileRepository")
    for name in ("disk.inf_amd64_aaaaaaaaaaaaaaaa",) + tuple(staged):
        os.makedirs(os.path.join(repo, name), exist_ok=True)
        with open(os.path.join(repo, name, name.split("_")[0]), "w") as fh:
            fh.write("; driver package stand-in\n")


def image(name: str, container: str = "raw") -> str:
    """Path to the variant ``name`` as ``container`` (built once)."""
    installed, staged = VARIANTS[name]
    spec = disks.DiskSpec(name, "windows", "win2k22", "gpt-windows",
                          root_fs="ntfs")
    original = trees.build_windows

    def build_windows(root, short_id, dirty=False):
        original(root, short_id, dirty)
        _add_drivers(root, installed, staged)

    raw = os.path.join(disks.cache_dir(), name + ".raw")
    if not os.path.exists(raw):
        with mock.patch.object(trees, "build_windows", build_windows):
            disks.build_raw(spec, raw)
    return disks.image(spec, container)


def missing() -> str:
    """Why these images cannot be built here ('' when they can)."""
    return disks.tool_missing() or disks.ntfs_missing() or ""
