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

"""Stopping a real glance-api at a chosen step of an import.

The import journal (``glance_ext.plugins.journal``) says which step each
import is at: each plugin writes it as the step begins. A test watches the
entry of its image and, the moment it shows the wanted step, kills (or
stops) glance-api. The journal is read again afterwards (a dead process
writes nothing more) to prove the stop really came during that step. For
the store upload the test waits instead for the store's file to grow.
"""

import glob
import json
import os
import signal
import time
from typing import Optional

import psutil

from glance_ext.plugins.journal import Entry, Step


def entry_of(journal_dir: str, image_id: str) -> Optional[Entry]:
    """The journal entry of ``image_id``'s import, or None."""
    for path in glob.glob(os.path.join(journal_dir, image_id + ".*.json")):
        try:
            with open(path) as fh:
                return Entry.from_dict(json.load(fh))
        except (OSError, ValueError):
            return None           # replaced while read: look again
    return None


def wait_for_step(journal_dir: str, image_id: str, step: Step,
                  timeout: float = 120) -> Entry:
    """Poll (every millisecond: steps can be a tenth of a second short)
    until the import of ``image_id`` is running ``step``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        entry = entry_of(journal_dir, image_id)
        if entry is not None:
            last = entry
            if entry.step is step and step not in entry.done:
                return entry
        time.sleep(0.001)
    raise AssertionError("the import of %s never reached %s; last journal "
                         "entry: %s" % (image_id, step.value, last))


def wait_for_growing_file(path: str, min_bytes: int,
                          timeout: float = 120) -> int:
    """Wait until ``path`` exists with at least ``min_bytes``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            size = os.path.getsize(path)
        except OSError:
            size = -1
        if size >= min_bytes:
            return size
        time.sleep(0.005)
    raise AssertionError("%s did not reach %d bytes" % (path, min_bytes))


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group ``pid`` leads (gunicorn's master and all
    its workers, as a host crash or an OOM kill of the service would)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone_group(pgid: int, timeout: float = 60) -> None:
    """Wait until no process of group ``pgid`` is left (the workers of a
    killed master may outlive it for a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pgid)
        if not live_members(pgid):
            return
        time.sleep(0.05)
    raise AssertionError("processes of group %d did not exit within %ss: %s"
                         % (pgid, timeout, live_members(pgid)))


def live_members(pgid: int) -> list:
    """Pids of group ``pgid`` that are not zombies (a zombie whose parent
    never reaps it still answers killpg)."""
    members = []
    for proc in psutil.process_iter(["status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc.pid)
        except ProcessLookupError:
            continue
    return members


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_gone(pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if _zombie(pid):
            return
        time.sleep(0.05)
    raise AssertionError("process %d did not exit within %ss"
                         % (pid, timeout))
