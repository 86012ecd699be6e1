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
"""

import os
import uuid
import warnings
from typing import Optional

from oslo_log import log as logging

with warnings.catch_warnings():
    # tooz imports futurist, which warns that eventlet is deprecated even
    # though nothing here uses eventlet; keep operators' cron mail clean.
    warnings.simplefilter('ignore')
    from tooz import coordination

LOG = logging.getLogger(__name__)


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
    """Holds the tooz lock of this storage for the duration of a pass."""

    def __init__(self, url: Optional[str], state_dir: str,
                 member: str) -> None:
        if not url:
            coord_dir = os.path.join(state_dir, 'coordination')
            os.makedirs(coord_dir, exist_ok=True)
            url = 'file://' + coord_dir
        self.url = url
        self.lock_name = ('glance-ext-cache-manager-%s'
                          % storage_id(state_dir)).encode()
        self.coordinator = coordination.get_coordinator(
            url, member.encode() + b'-' + str(os.getpid()).encode())
        self.coordinator.start(start_heart=True)
        self.lock = self.coordinator.get_lock(self.lock_name)
        self.held = False

    def try_lead(self) -> bool:
        self.held = bool(self.lock.acquire(blocking=False))
        return self.held

    def resign(self) -> None:
        if self.held:
            self.lock.release()
            self.held = False

    def stop(self) -> None:
        self.resign()
        self.coordinator.stop()
