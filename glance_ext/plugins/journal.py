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

"""The import journal: what each import in flight has done, on disk.

When glance-api stops in the middle of an import (restart, crash, OOM
kill), Glance leaves the image ``importing`` with an import lock, the
stores in ``os_glance_importing_to_stores``, possibly a half-written object
in a store and our intermediate files in staging; nothing in Glance
reverts it. Each import our plugins see therefore keeps one small JSON
entry here, from the first plugin to the end of the import (the store
upload and Glance's staging clean-up included): the step it is at, the
files it made, what it changed on the image, the size Glance recorded for
the staged upload, and the identity of the process that runs it. An entry
whose process no longer exists is an interrupted import, which
``recovery`` reverts. A process is identified by PID *and* start time, so a
reused PID does not make a dead import look alive; a host reboot is seen
through the boot id.

PIDs, start times and boot ids mean something only on the host that wrote
them, so an entry is judged only by its own node: each entry names its
node (``[glance_ext] host``, default the host name) and a journal lists as
interrupted only the entries of its own node. That keeps a journal shared
by several nodes (a staging directory mounted on every node, the journal
next to it) safe: a node never reverts an import of another node, alive
or not; the owner reverts its own after its restart.

Writes are atomic (a temporary file renamed over the entry), so a crash
leaves the previous entry or the new one, never half of one.
"""

import dataclasses
import enum
import json
import os
import socket
import time
from typing import Any, Dict, List, Optional

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class Step(str, enum.Enum):
    """Where an import is, as our plugins see it (in import order)."""

    DECOMPRESS = "decompress"
    VALIDATE = "validate"
    CONVERT = "convert"
    INJECT = "inject"
    UPLOAD = "upload"

    @property
    def text(self) -> str:
        """The step in a sentence: "interrupted during <text>"."""
        return _STEP_TEXT[self]


_STEP_TEXT = {
    Step.DECOMPRESS: "decompression (glance_ext_decompress)",
    Step.VALIDATE: "validation (glance_ext_validate)",
    Step.CONVERT: "conversion (glance_ext_convert)",
    Step.INJECT: "the inspection of the guest (glance_ext_inject)",
    Step.UPLOAD: "the upload to the store",
}


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def boot_time() -> Optional[float]:
    """When this machine booted (seconds since the epoch), or None."""
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


# An entry that names this node but was written under another boot id
# more than this long after this machine booted cannot come from an
# earlier boot of this machine (clocks of nodes may differ a little).
SAME_NAME_MARGIN_SECONDS = 120.0


def start_time(pid: int) -> Optional[str]:
    """The start time of ``pid`` (clock ticks since boot), or None."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            stat = fh.read()
    except OSError:
        return None
    # Field 22 (starttime); the command name in field 2 may hold spaces.
    # Read here rather than with psutil: entries persist this raw tick
    # count and compare it across glance-api versions, and psutil offers
    # only a derived float (create_time).
    return stat.rsplit(")", 1)[1].split()[19]


@dataclasses.dataclass
class Owner:
    """The process that runs an import."""

    pid: int
    pid_start: Optional[str]
    boot_id: str
    host: str

    @classmethod
    def this_process(cls, host: Optional[str] = None) -> "Owner":
        """This process, on node ``host`` (default: the host name)."""
        pid = os.getpid()
        return cls(pid=pid, pid_start=start_time(pid), boot_id=boot_id(),
                   host=host or socket.gethostname())

    def alive(self) -> bool:
        """Whether the owner still runs; only meaningful on the owner's
        own node (``Journal`` asks it only there)."""
        if self.boot_id != boot_id():
            return False
        start = start_time(self.pid)
        return start is not None and start == self.pid_start


@dataclasses.dataclass
class Entry:
    """One import in flight. ``original`` holds image attributes as they
    were before a plugin changed them (disk_format, container_format,
    size); ``properties`` holds, for each extra property a plugin set, its
    value before (None: it did not exist)."""

    image_id: str
    task_id: str
    method: str
    stores: List[str]
    staged_path: str
    staged_size: Optional[int]
    owner: Owner
    step: Step = Step.DECOMPRESS
    done: List[Step] = dataclasses.field(default_factory=list)
    files: List[str] = dataclasses.field(default_factory=list)
    original: Dict[str, Any] = dataclasses.field(default_factory=dict)
    properties: Dict[str, Optional[str]] = dataclasses.field(
        default_factory=dict)
    started: float = dataclasses.field(default_factory=time.time)
    updated: float = dataclasses.field(default_factory=time.time)

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["step"] = self.step.value
        data["done"] = [s.value for s in self.done]
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Entry":
        data = dict(data)
        data["owner"] = Owner(**data["owner"])
        data["step"] = Step(data["step"])
        data["done"] = [Step(s) for s in data.get("done") or ()]
        return cls(**data)

    def remember(self, attributes: Dict[str, Any],
                 properties: Dict[str, Optional[str]]) -> None:
        """Record values before a change; the first record of a key wins
        (it is the value before *any* of our plugins changed it)."""
        for key, value in attributes.items():
            self.original.setdefault(key, value)
        for key, value in properties.items():
            self.properties.setdefault(key, value)


class Journal:
    """Import entries, one JSON file per import, in a directory, seen by
    node ``host`` (default: the host name); the directory may hold the
    entries of other nodes too."""

    def __init__(self, directory: str, host: Optional[str] = None) -> None:
        self.directory = directory
        self.host = host or socket.gethostname()

    def _path(self, image_id: str, task_id: str) -> str:
        return os.path.join(self.directory, "%s.%s.json" % (image_id,
                                                            task_id))

    def write(self, entry: Entry) -> None:
        os.makedirs(self.directory, mode=0o750, exist_ok=True)
        entry.updated = time.time()
        path = self._path(entry.image_id, entry.task_id)
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(entry.to_dict(), fh)
        os.replace(tmp, path)

    def remove(self, image_id: str, task_id: str) -> None:
        try:
            os.unlink(self._path(image_id, task_id))
        except FileNotFoundError:
            pass

    def entries(self) -> List[Entry]:
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
                    result.append(Entry.from_dict(json.load(fh)))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                LOG.warning("Unreadable import journal entry %s: %s",
                            name, exc)
        return result

    def own(self) -> List[Entry]:
        """The entries of this node."""
        return [e for e in self.entries() if e.owner.host == self.host]

    def foreign(self) -> List[Entry]:
        """The entries of other nodes (a shared directory): never judged
        here."""
        return [e for e in self.entries() if e.owner.host != self.host]

    def clashing(self) -> List[Entry]:
        """Entries that name this node but were written by another
        machine: another boot id, and written after this machine booted.
        Two nodes use one ``[glance_ext] host`` on one shared journal;
        judging those entries by this machine's process table would revert
        imports that still run there, so they are left alone (and
        ``recovery`` says why)."""
        booted = boot_time()
        mine = boot_id()
        if booted is None or not mine:
            return []
        return [e for e in self.own()
                if e.owner.boot_id and e.owner.boot_id != mine
                and e.updated > booted + SAME_NAME_MARGIN_SECONDS]

    def interrupted(self) -> List[Entry]:
        """Entries of this node whose process is gone (never one that
        another machine of the same name wrote: ``clashing``)."""
        clashing = {(e.image_id, e.task_id) for e in self.clashing()}
        return [e for e in self.own() if not e.owner.alive()
                and (e.image_id, e.task_id) not in clashing]

    def old(self, age_seconds: float) -> List[Entry]:
        """Entries of live processes of this node not updated for
        ``age_seconds``: an import whose end-of-import hook was missed
        (they are checked against the task)."""
        now = time.time()
        return [e for e in self.own()
                if e.owner.alive() and now - e.updated > age_seconds]
