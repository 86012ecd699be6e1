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

"""The single place where Glance disk_format names meet qemu driver names.

Glance and qemu disagree on names (Glance's ``vhd`` is qemu's ``vpc``, an
``iso`` or ``gpt`` disk is opened by qemu as ``raw``). Glance's own
image_conversion plugin passes the Glance name to ``qemu-img -f`` and so
always fails on VHD; every caller here goes through this map instead.
"""

from typing import Optional
from glance_ext.exceptions import UnknownFormat

# Glance disk_format -> qemu block driver used to open it.
GLANCE_TO_QEMU = {
    "raw": "raw",
    "qcow2": "qcow2",
    "vhd": "vpc",
    "vhdx": "vhdx",
    "vmdk": "vmdk",
    "vdi": "vdi",
    "qed": "qed",
    "luks": "luks",
    "ploop": "parallels",
    # Disk layouts that qemu has no driver for: the bytes are a raw disk.
    "iso": "raw",
    "gpt": "raw",
    "ami": "raw",
    "ari": "raw",
    "aki": "raw",
}

# qemu driver -> the Glance name it is normally reported as. Only drivers
# whose Glance name differs need an entry; ``raw`` maps to ``raw`` although
# iso/gpt also open as raw, because qemu cannot tell them apart.
_QEMU_TO_GLANCE_SPECIAL = {
    "vpc": "vhd",
    "parallels": "ploop",
}


def to_qemu(glance_format: str) -> str:
    """Return the qemu driver name for a Glance disk_format."""
    try:
        return GLANCE_TO_QEMU[glance_format]
    except KeyError:
        raise UnknownFormat(
            "disk format %r has no qemu driver; known formats: %s"
            % (glance_format, ", ".join(sorted(GLANCE_TO_QEMU))))


def to_glance(qemu_format: Optional[str]) -> Optional[str]:
    """Return the Glance disk_format name for a qemu driver name."""
    if qemu_format is None:
        return None
    return _QEMU_TO_GLANCE_SPECIAL.get(qemu_format, qemu_format)


def same_driver(glance_format: str, qemu_format: Optional[str]) -> bool:
    """True when qemu's reported driver is the one a Glance format opens as."""
    return GLANCE_TO_QEMU.get(glance_format) == qemu_format
