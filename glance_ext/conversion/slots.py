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

"""A per-host limit on concurrent conversions, shared by all Glance workers.

Mechanism: N lock files ``slot-0 .. slot-N-1`` in a local directory; a
conversion holds an exclusive ``flock`` on one of them. Why this and not
something else:
- tooz needs a coordination service or its file driver, which offers locks
  but no counting semaphore; a slot set is what a counting semaphore over
  files is anyway.
- oslo.concurrency/fasteners use POSIX ``lockf`` record locks, which belong
  to the *process*: two import threads of one gunicorn worker would both
  "get" the same slot. ``flock`` locks belong to the open file description,
  so two threads of one process exclude each other like two processes do.
- The kernel drops the lock when the holder dies (worker killed, host
  restart), so a crash can never leak a slot; no cleanup, no stale PID files.
"""

import errno
import fcntl
import os
import time
from typing import Callable, Optional

from oslo_log import log as logging
from glance_ext.exceptions import SlotTimeout

LOG = logging.getLogger(__name__)


class Slot:
    """One held slot; release() (or the context manager) frees it."""

    def __init__(self, index: int, fd: int, path: str) -> None:
        self.index = index
        self.path = path
        self._fd: Optional[int] = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> "Slot":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class HostSlots:
    """``max_concurrent`` slots in ``directory``."""

    def __init__(self, directory: str, max_concurrent: int,
                 poll_seconds: float = 0.5) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.directory = directory
        self.max_concurrent = max_concurrent
        self.poll_seconds = poll_seconds

    def _path(self, index: int) -> str:
        return os.path.join(self.directory, "slot-%d" % index)

    def try_acquire(self) -> Optional[Slot]:
        """A free slot, or None when all are held."""
        os.makedirs(self.directory, mode=0o750, exist_ok=True)
        for index in range(self.max_concurrent):
            path = self._path(index)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES,
                                 errno.EWOULDBLOCK):
                    continue
                raise
            return Slot(index, fd, path)
        return None

    def busy(self) -> int:
        """How many slots are held right now (for messages)."""
        held = 0
        for index in range(self.max_concurrent):
            try:
                fd = os.open(self._path(index), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                held += 1
            finally:
                os.close(fd)
        return held

    def acquire(self, timeout: float,
                on_wait: Optional[Callable[[float], None]] = None) -> Slot:
        """Wait up to ``timeout`` seconds for a slot.

        ``on_wait(seconds_waited)`` is called on each poll while waiting, so
        the caller can tell the user why nothing happens yet.
        """
        start = time.monotonic()
        while True:
            slot = self.try_acquire()
            if slot is not None:
                waited = time.monotonic() - start
                if waited > 1:
                    LOG.info("Got conversion slot %d after %.1fs",
                             slot.index, waited)
                return slot
            waited = time.monotonic() - start
            if waited >= timeout:
                raise SlotTimeout(
                    "this Glance host is busy: all %d conversion slots stayed "
                    "taken for %ds; retry the import later or raise "
                    "max_concurrent/slot_wait_seconds"
                    % (self.max_concurrent, int(timeout)))
            if on_wait is not None:
                on_wait(waited)
            time.sleep(self.poll_seconds)
