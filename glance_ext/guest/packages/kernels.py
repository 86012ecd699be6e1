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

"""The kernels a Linux guest can boot: ``/boot`` images and module trees.

A kernel is installed when its image is in /boot (``vmlinuz-<version>``,
``vmlinux-`` on some arches, ``Image-`` on arm64 Debian) and its modules in
``/lib/modules/<version>``; either alone is still reported, with the other
left empty, since a scanner matching kernel CVEs wants every candidate.
The version is the kernel release string (``uname -r``), taken from the
names, not from the package database, so it is right even for a kernel
built by hand.
"""

from typing import Dict, List

from glance_ext.guest import guesttree
from glance_ext.guest.packages import Kernel

IMAGE_PREFIXES = ("vmlinuz-", "vmlinux-", "Image-", "kernel-")
MODULE_DIRS = ("/lib/modules", "/usr/lib/modules")
# Not kernels: rescue images and the generic links some distros keep.
SKIP_SUFFIXES = (".hmac", ".old", ".sig")


def find(tree: guesttree.GuestTree) -> List[Kernel]:
    images: Dict[str, str] = {}
    for name in sorted(tree.listdir("/boot")):
        prefix = next((p for p in IMAGE_PREFIXES if name.startswith(p)),
                      None)
        if prefix is None or name.endswith(SKIP_SUFFIXES) or \
                "rescue" in name:
            continue
        version = name[len(prefix):]
        if not version or not version[0].isdigit():
            continue
        images.setdefault(version, "/boot/" + name)
    modules: Dict[str, str] = {}
    for base in MODULE_DIRS:
        for name in sorted(tree.listdir(base)):
            if name[:1].isdigit():
                modules.setdefault(name, "%s/%s" % (base, name))
        if modules:
            break
    return [Kernel(version=v, image=images.get(v), modules=modules.get(v))
            for v in sorted(set(images) | set(modules))]
