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

"""Guest images for the engine tests, built once per builder version.

The builders need e2fsprogs, dosfstools, mtools, fdisk (sfdisk), xfsprogs
and qemu-utils; a test that needs a missing tool is skipped with its name,
so a machine without them says what to install instead of failing.
"""

import shutil

import pytest

from glance_ext import testing
from glance_ext.guest import inspect_guest
from glance_ext.testing.guest import disks


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            testing.needs("%s is not installed (see docs/guest-inspection.md "
                          "for the Debian packages the tests need)" % tool)


@pytest.fixture(scope="session")
def guest_image():
    """guest_image(name, container="raw") -> (path, disk_format)."""
    def get(name: str, container: str = "raw"):
        spec = disks.SPECS[name]
        _need("mke2fs", "mkfs.vfat", "mcopy", "sfdisk", "mkswap", "qemu-img",
              "qemu-nbd")
        if spec.root_fs == "xfs":
            _need("mkfs.xfs")
        if spec.root_fs == "ntfs" and disks.ntfs_missing():
            testing.needs(disks.ntfs_missing())
        return disks.image(spec, container), disks.disk_format_of(container)
    return get


@pytest.fixture(scope="session")
def inspected(guest_image):
    """inspected(name, container="raw") -> GuestReport (cached)."""
    cache = {}

    def get(name: str, container: str = "raw"):
        key = (name, container)
        if key not in cache:
            path, fmt = guest_image(name, container)
            cache[key] = inspect_guest(path, fmt)
        return cache[key]
    return get
