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

"""Finding the qemu-img processes a test started, from /proc.

Tests that kill, throttle or count conversions need the real processes;
a marker (a path or an image id in the command line) tells ours apart.
"""

import os
from typing import List, Optional


def qemu_img_pids(marker: str, subcommand: Optional[str] = "convert"
                  ) -> List[int]:
    """Pids of live ``qemu-img [subcommand]`` whose arguments hold marker."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read().split(b"\0")
        except OSError:
            continue
        if not cmd or not cmd[0].endswith(b"qemu-img"):
            continue
        if subcommand and subcommand.encode() not in cmd:
            continue
        if any(marker.encode() in arg for arg in cmd):
            pids.append(int(pid))
    return pids
