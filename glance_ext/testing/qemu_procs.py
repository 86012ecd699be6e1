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

"""Finding the processes a test started (qemu-img above all), from /proc.

Tests that kill, throttle or count conversions need the real processes;
a marker (a path or an image id in the command line) tells ours apart.
"""

import os
import subprocess
from typing import Iterator, List, Optional, Tuple

import psutil


def _cmdlines() -> Iterator[Tuple[int, List[bytes]]]:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                yield int(pid), fh.read().split(b"\0")
        except OSError:
            continue


def qemu_img_pids(marker: str, subcommand: Optional[str] = "convert"
                  ) -> List[int]:
    """Pids of live ``qemu-img [subcommand]`` whose arguments hold marker."""
    pids = []
    for pid, cmd in _cmdlines():
        if not cmd or not cmd[0].endswith(b"qemu-img"):
            continue
        if subcommand and subcommand.encode() not in cmd:
            continue
        if any(marker.encode() in arg for arg in cmd):
            pids.append(pid)
    return pids


def converter_pids(marker: str) -> List[int]:
    """Pids of live conversions whose arguments hold marker: ``qemu-img
    convert`` (the file path) and ``nbdcopy`` (a raw output streamed into
    the store upload; its qemu-nbd is part of the same conversion and is
    not counted again)."""
    pids = qemu_img_pids(marker)
    nbdcopies = {pid for pid, cmd in _cmdlines()
                 if cmd and cmd[0].endswith(b"nbdcopy")
                 and any(marker.encode() in arg for arg in cmd)}
    # nbdcopy forks the qemu-nbd it serves from: until that child has
    # exec'd, it shows nbdcopy's command line too. It is the same
    # conversion, so it is not counted.
    pids.extend(pid for pid in nbdcopies if parent_pid(pid) not in nbdcopies)
    return pids


def parent_pid(pid: int) -> Optional[int]:
    """The parent of ``pid``, or None when it is gone."""
    try:
        return psutil.Process(pid).ppid()
    except psutil.Error:
        return None


def pids_naming(text: str) -> List[int]:
    """Pids of every live process whose command line holds ``text``."""
    return [pid for pid, cmd in _cmdlines()
            if any(text.encode() in arg for arg in cmd)]


def same_guest_data(a: str, format_a: str, b: str, format_b: str) -> bool:
    """``qemu-img compare``: both images hold the same guest data."""
    return subprocess.run(["qemu-img", "compare", "-f", format_a, "-F",
                           format_b, a, b], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE).returncode == 0
