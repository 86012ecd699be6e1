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

Mechanism: N lock files ``<node>.slot-0 .. <node>.slot-N-1`` in a
directory; a conversion holds an exclusive ``flock`` on one of them. Why
this and not something else:
- tooz needs a coordination service or its file driver, which offers locks
  but no counting semaphore; a slot set is what a counting semaphore over
  files is anyway.
- oslo.concurrency/fasteners use POSIX ``lockf`` record locks, which belong
  to the *process*: two import threads of one gunicorn worker would both
  "get" the same slot. ``flock`` locks belong to the open file description,
  so two threads of one process exclude each other like two processes do.
- The kernel drops the lock when the holder dies (worker killed, host
  restart), so a crash can never leak a slot; no cleanup, no stale PID files.
- The files are named after the node (``[glance_ext] host``, default the
  host name), so a lock directory that ends up shared between nodes (next
  to a staging directory mounted on every node) still limits each node on
  its own, whether the NFS client turns flock into cluster-wide locks or
  keeps it local (``local_lock``).

``acquire_all`` takes a host slot and then, when a cluster-wide cap is
configured, one of its slots (``cluster``): host first, so a conversion
waiting for its own host never holds a slot other nodes could use.
"""

import dataclasses
import enum
import errno
import fcntl
import os
import socket
import time
from typing import Callable, Optional

from oslo_log import log as logging

from glance_ext.common.names import file_safe
from glance_ext import exceptions
from glance_ext.exceptions import SlotTimeout

LOG = logging.getLogger(__name__)

# A host-slot poll is a few syscalls; a cluster-slot poll is a round trip
# to the backend per slot, so it polls less often.
CLUSTER_POLL_SECONDS = 1.0


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
                 poll_seconds: float = 0.5,
                 node: Optional[str] = None) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.directory = directory
        self.max_concurrent = max_concurrent
        self.poll_seconds = poll_seconds
        self.node = node or socket.gethostname()
        self._prefix = file_safe(self.node)

    def _path(self, index: int) -> str:
        return os.path.join(self.directory,
                            "%s.slot-%d" % (self._prefix, index))

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


class Scope(str, enum.Enum):
    """Which limit a conversion waits for."""

    HOST = "host"
    CLUSTER = "cluster"


@dataclasses.dataclass(frozen=True)
class Wait:
    """What a waiting conversion is waiting for, for its task message."""

    seconds: float
    scope: Scope
    allowed: int

    @property
    def text(self) -> str:
        where = "on this host" if self.scope is Scope.HOST else \
            "in the cluster"
        return "%d allowed %s" % (self.allowed, where)


class Held:
    """The slots one conversion holds (host, and cluster when capped)."""

    def __init__(self, host: Slot, cluster=None,
                 degraded: Optional[str] = None) -> None:
        self.host = host
        self.cluster = cluster
        # Why the cluster-wide cap was not applied (backend unreachable and
        # coordination_unreachable = host_limits), else None.
        self.degraded = degraded

    def release(self) -> None:
        try:
            if self.cluster is not None:
                self.cluster.release()
        finally:
            self.host.release()

    def __enter__(self) -> "Held":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


UNREACHABLE_FAIL = "fail"
UNREACHABLE_HOST_LIMITS = "host_limits"


def acquire_all(host: HostSlots, cluster, timeout: float,
                on_wait: Optional[Callable[[Wait], None]] = None,
                unreachable: str = UNREACHABLE_FAIL) -> Held:
    """A host slot, then a cluster slot (``cluster``: a
    ``cluster.ClusterSlots`` or None), waiting up to ``timeout`` seconds
    for both together.

    When the backend cannot be used, ``unreachable`` decides: "fail"
    re-raises its ``ToolUnavailable`` (the host slot is given back);
    "host_limits" logs it and goes on with the host slot only.
    """
    start = time.monotonic()
    slot: Optional[Slot] = None
    scope = Scope.HOST
    try:
        while True:
            if slot is None:
                slot = host.try_acquire()
            if slot is not None:
                if cluster is None:
                    return _got(Held(slot), start)
                scope = Scope.CLUSTER
                try:
                    held = cluster.try_acquire()
                except exceptions.ToolUnavailable as exc:
                    if unreachable != UNREACHABLE_HOST_LIMITS:
                        LOG.error("Conversion not started: %s", exc)
                        raise
                    LOG.warning("Converting under the per-host limit only "
                                "(coordination_unreachable = host_limits): "
                                "%s", exc)
                    return _got(Held(slot, degraded=str(exc)), start)
                if held is not None:
                    return _got(Held(slot, held), start)
            waited = time.monotonic() - start
            if waited >= timeout:
                raise SlotTimeout(_busy(host, cluster, scope, timeout))
            if on_wait is not None:
                on_wait(Wait(waited, scope, host.max_concurrent
                             if scope is Scope.HOST
                             else cluster.max_concurrent))
            time.sleep(host.poll_seconds if scope is Scope.HOST
                       else CLUSTER_POLL_SECONDS)
    except BaseException:
        if slot is not None:
            slot.release()
        if cluster is not None:
            cluster.close()
        raise


def _got(held: Held, start: float) -> Held:
    waited = time.monotonic() - start
    if waited > 1:
        LOG.info("Got conversion slot %d%s after %.1fs", held.host.index,
                 " and cluster slot %d" % held.cluster.index
                 if held.cluster is not None else "", waited)
    return held


def _busy(host: HostSlots, cluster, scope: Scope, timeout: float) -> str:
    if scope is Scope.CLUSTER:
        return ("the cloud is busy: all %d cluster-wide conversion slots "
                "on %s stayed taken for %ds; retry the import later or "
                "raise cluster_max_concurrent/slot_wait_seconds"
                % (cluster.max_concurrent, cluster.backend, int(timeout)))
    return ("this Glance host is busy: all %d conversion slots stayed "
            "taken for %ds; retry the import later or raise "
            "max_concurrent/slot_wait_seconds"
            % (host.max_concurrent, int(timeout)))
