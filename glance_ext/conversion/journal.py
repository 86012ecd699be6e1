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

"""A record of conversions in flight, to recover from a Glance restart.

When glance-api stops in the middle of a conversion (restart, crash, OOM
kill), Glance leaves the image ``importing`` with an import lock that stays
valid for 60 minutes, and our partial output plus the staged file stay in
staging. Nothing in Glance reverts it. Each conversion therefore writes a
small JSON entry (image, task, stores, files, and the identity of the
process that runs it) next to the slot lock files; an entry whose process
no longer exists is an interrupted conversion that ``recovery`` reverts.
A process is identified by PID *and* start time, so a reused PID does not
make a dead conversion look alive; a host reboot is seen via the boot id.
"""

import json
import os
import time
from typing import Dict, List, Optional, Sequence

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> Optional[str]:
    try:
        with open("/proc/%d/stat" % pid) as fh:
            stat = fh.read()
    except OSError:
        return None
    # Field 22 (starttime); the command name in field 2 may hold spaces.
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(entry: Dict) -> bool:
    if entry.get("boot_id") != _boot_id():
        return False
    start = _start_time(int(entry.get("pid", -1)))
    return start is not None and start == entry.get("pid_start")


class Journal:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _path(self, image_id: str, task_id: str) -> str:
        return os.path.join(self.directory, "%s.%s.json" % (image_id,
                                                            task_id))

    def record(self, image_id: str, task_id: str, stores: Sequence[str],
               files: Sequence[str], original: Optional[Dict] = None) -> str:
        """Write (or rewrite) the entry of one import. ``original``: the
        image attributes to restore if it is interrupted after we changed
        them."""
        os.makedirs(self.directory, mode=0o750, exist_ok=True)
        entry = {"image_id": image_id, "task_id": task_id,
                 "stores": list(stores), "files": list(files),
                 "original": original,
                 "pid": os.getpid(), "pid_start": _start_time(os.getpid()),
                 "boot_id": _boot_id(), "started": time.time()}
        path = self._path(image_id, task_id)
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(entry, fh)
        os.replace(tmp, path)
        return path

    def remove(self, image_id: str, task_id: str) -> None:
        try:
            os.unlink(self._path(image_id, task_id))
        except FileNotFoundError:
            pass

    def interrupted(self) -> List[Dict]:
        """Entries whose process is gone."""
        return [e for e in self._entries() if not _alive(e)]

    def old(self, age_seconds: float) -> List[Dict]:
        """Entries of live processes older than ``age_seconds``: imports
        that finished long ago (an entry lives until the import's process
        ends, because the store upload after the conversion can be
        interrupted too)."""
        now = time.time()
        return [e for e in self._entries()
                if _alive(e) and now - e.get("started", now) > age_seconds]

    def _entries(self) -> List[Dict]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        result = []
        for name in sorted(names):
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.directory, name)) as fh:
                    entry = json.load(fh)
            except (OSError, ValueError) as exc:
                LOG.warning("Unreadable conversion journal entry %s: %s",
                            name, exc)
                continue
            result.append(entry)
        return result
