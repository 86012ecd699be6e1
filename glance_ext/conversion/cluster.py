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

"""A cluster-wide cap on concurrent conversions, through tooz.

Conversions on every glance-api node read and write the same shared
storage (Ceph, NFS) when staging or the store lives there; the per-host
slots (``slots``) cannot see the other nodes. With ``[glance_ext_convert]
coordination_url`` set, a conversion also holds one of
``cluster_max_concurrent`` tooz locks named ``/glance-ext/convert/slot-N``
on that backend (etcd or redis; any tooz backend with locks that span
hosts works). tooz has locks but no counting semaphore, so the cap is N
named locks, as the per-host slots are N lock files.

A lock is held by a connection of its own for the whole conversion and
refreshed by ``coordination.Session``; a node that dies holding one frees
it when the backend's lease runs out (tooz's ``lock_timeout``, 30 s
unless the URL sets ``?lock_timeout=``). What happens when the backend is
unreachable is the operator's choice (``coordination_unreachable``): the
import fails with a reason naming the backend (default), or the
conversion goes on under the per-host limit only; either way it is
logged, and it is reported as the deployment's fault, never the image's.
"""

import os
import socket
from typing import Optional

from oslo_log import log as logging

from glance_ext.common import coordination

LOG = logging.getLogger(__name__)

LOCK_PREFIX = b"/glance-ext/convert/slot-"
PURPOSE = ("the cluster-wide conversion cap ([glance_ext_convert] "
           "coordination_url)")
# What the user and the operator can do while the backend is away.
THEN = ("import the image again once it is back (or set "
        "[glance_ext_convert] coordination_unreachable = host_limits to "
        "convert under the per-host limit meanwhile)")


def lock_name(index: int) -> bytes:
    return LOCK_PREFIX + str(index).encode()


class ClusterSlot:
    """One held cluster-wide slot; ``release`` frees it and disconnects."""

    def __init__(self, index: int, session: coordination.Session,
                 lock: object) -> None:
        self.index = index
        self.session = session
        self._lock: Optional[object] = lock

    @property
    def healthy(self) -> bool:
        """Whether the backend confirmed the slot recently."""
        return self.session.healthy()

    def release(self) -> None:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            self.session.release(lock)
            self.session.stop()


class ClusterSlots:
    """``max_concurrent`` slots on the backend at ``url``, for one
    conversion: it connects at the first ``try_acquire`` and hands its
    connection to the slot it gets (``close`` drops it otherwise)."""

    def __init__(self, url: str, max_concurrent: int,
                 member: Optional[str] = None) -> None:
        if max_concurrent < 1:
            raise ValueError("cluster_max_concurrent must be at least 1")
        self.url = url
        self.backend = coordination.redact(url)
        self.max_concurrent = max_concurrent
        self.member = member or "glance-ext-convert-%s-%d" % (
            socket.gethostname(), os.getpid())
        self._session: Optional[coordination.Session] = None

    def try_acquire(self) -> Optional[ClusterSlot]:
        """A free slot, or None when all are held. Raises
        ``exceptions.CoordinationUnavailable`` (unreachable) or another
        ``exceptions.ToolUnavailable`` (driver missing)."""
        try:
            if self._session is None:
                self._session = coordination.Session(
                    self.url, self.member, PURPOSE, then=THEN)
            for index in range(self.max_concurrent):
                lock = self._session.try_lock(lock_name(index))
                if lock is not None:
                    session, self._session = self._session, None
                    return ClusterSlot(index, session, lock)
        except Exception:
            self.close()
            raise
        return None

    def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            session.stop()
