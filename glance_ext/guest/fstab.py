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

"""The guest's /etc/fstab, and which partition each entry names.

fstab names filesystems by ``UUID=``, ``LABEL=``, ``PARTUUID=``,
``PARTLABEL=``, ``/dev/disk/by-*/`` links or kernel device names
(``/dev/vda2``, ``/dev/sda1``, ``/dev/nvme0n1p2``); the engine matches each
against what the partition table and the superblocks say, never against
the host's devices.
"""

import dataclasses
import re
from typing import List, Optional

_DEV_RE = re.compile(r"^/dev/(?:[shvx]d[a-z]|xvd[a-z]|nvme\d+n\d+p|"
                     r"mmcblk\d+p)(\d+)$")


@dataclasses.dataclass
class FstabEntry:
    spec: str
    mountpoint: str
    fs_type: str
    options: str


def parse(text: str, max_entries: int = 256) -> List[FstabEntry]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 3:
            continue
        spec = fields[0].replace("\\040", " ")
        out.append(FstabEntry(spec, fields[1], fields[2],
                              fields[3] if len(fields) > 3 else "defaults"))
        if len(out) >= max_entries:
            break
    return out


def matches(spec: str, *, uuid: Optional[str], label: Optional[str],
            part_uuid: Optional[str], part_label: Optional[str],
            number: Optional[int], lv: Optional[str] = None) -> bool:
    """True when fstab's ``spec`` names this partition/filesystem."""
    def same(a: Optional[str], b: Optional[str]) -> bool:
        return bool(a) and bool(b) and a.strip('"').lower() == b.lower()

    s = spec.strip('"')
    for prefix, value in (("UUID=", uuid), ("LABEL=", label),
                          ("PARTUUID=", part_uuid),
                          ("PARTLABEL=", part_label),
                          ("/dev/disk/by-uuid/", uuid),
                          ("/dev/disk/by-label/", label),
                          ("/dev/disk/by-partuuid/", part_uuid),
                          ("/dev/disk/by-partlabel/", part_label)):
        if s.startswith(prefix):
            return same(s[len(prefix):], value)
    if lv and s.startswith("/dev/"):
        vg, _sep, name = lv.partition("/")
        # device-mapper doubles dashes inside VG and LV names.
        mapper = "%s-%s" % (vg.replace("-", "--"), name.replace("-", "--"))
        return s in ("/dev/%s/%s" % (vg, name), "/dev/mapper/" + mapper)
    match = _DEV_RE.match(s)
    if match and number is not None:
        return int(match.group(1)) == number
    return False
