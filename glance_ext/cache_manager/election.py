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

"""One acting manager per storage, elected through tooz.

Every host sharing ``instances_path`` may run the manager; only the one
holding the tooz lock acts, the others skip the pass. By default the tooz
file driver keeps the lock in ``<state_dir>/coordination``, i.e. on the
shared storage itself, so no extra service is needed; any tooz backend URL
(etcd3+http://, redis://, zookeeper://...) can be configured instead. The
lock name includes a storage id created once on the storage, so one
coordination service can serve many storages.

The connection goes through ``glance_ext.common.coordination``: an unreachable
backend is reported at once (the pass then only reports, and says why),
the lock is refreshed by a thread that never blocks the end of the pass,
and ``still_leading`` tells a pass whose backend stopped confirming the
lock to stop removing. With etcd or redis the lock of a manager that was
killed stays taken until the backend's lease runs out (tooz's
``lock_timeout``, 30 s unless the URL says ``?lock_timeout=N``); passes of
the other managers only report until then.
"""

import os
import uuid
from typing import Optional

from oslo_log import log as logging

from glance_ext.common import coordination

LOG = logging.getLogger(__name__)

PURPOSE = "the cache manager election ([cache_manager] coordination_url)"


def storage_id(state_dir: str) -> str:
    """A random id stored on the storage, created by whoever comes first."""
    path = os.path.join(state_dir, 'storage-id')
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        with open(path) as f:
            value = f.read().strip()
        if value:
            return value
        raise RuntimeError('%s is empty; remove it so a new id is made'
                           % path)
    value = str(uuid.uuid4())
    with os.fdopen(fd, 'w') as f:
        f.write(value + '\n')
        f.flush()
        os.fsync(f.fileno())
    return value


class Election:
    """Holds the tooz lock of this storage for the duration of a pass.

    Raises ``exceptions.CoordinationUnavailable`` (or another
    ``ToolUnavailable``) when the backend cannot be used.
    """

    def __init__(self, url: Optional[str], state_dir: str,
                 member: str) -> None:
        if not url:
            coord_dir = os.path.join(state_dir, 'coordination')
            os.makedirs(coord_dir, exist_ok=True)
            url = 'file://' + coord_dir
        self.url = url
        self.backend = coordination.redact(url)
        self.member = '%s-%d' % (member, os.getpid())
        self.lock_name = ('glance-ext-cache-manager-%s'
                          % storage_id(state_dir)).encode()
        self.session = coordination.Session(url, self.member, PURPOSE)
        self._lock: Optional[object] = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def try_lead(self) -> bool:
        self._lock = self.session.try_lock(self.lock_name)
        if self._lock is not None:
            LOG.info('Elected on %s as %s: this manager acts on the storage '
                     'in this pass', self.backend, self.member)
        return self.held

    def still_leading(self) -> bool:
        """Whether the backend confirmed the lock recently (a manager
        whose backend went away stops acting)."""
        return self.held and self.session.healthy()

    def resign(self) -> None:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            self.session.release(lock)

    def stop(self) -> None:
        self.resign()
        self.session.stop()
