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

"""Nova's external locks on cache files.

Nova creates a base, and creates an instance disk from a base, while
holding ``utils.synchronized(<basename>, external=True,
lock_path=<instances_path>/locks)``, with ``utils.synchronized =
lockutils.synchronized_with_prefix('nova-')``: an fcntl lock on the file
``<instances_path>/locks/nova-<basename>``. Taking the same lock through
oslo.concurrency's ``external_lock`` (same prefix, same path) is what makes
"check unused, then remove" atomic with respect to nova.

fcntl locks belong to the process, and closing *any* descriptor of a
locked file drops the process's lock on it, so a name is never locked
twice here: ``NovaLocks`` deduplicates.
"""

import os
from typing import Dict, Iterable, List

from oslo_concurrency import lockutils

NOVA_LOCK_PREFIX = 'nova-'


def lock_dir(instances_path: str) -> str:
    return os.path.join(instances_path, 'locks')


class NovaLocks:
    """A set of nova's cache locks held together by this process."""

    def __init__(self, instances_path: str) -> None:
        self.path = lock_dir(instances_path)
        self.held: Dict[str, object] = {}

    def acquire(self, name: str, wait: float = 0.0) -> bool:
        """Take nova's lock on ``name``; False if nova holds it."""
        if name in self.held:
            return True
        lock = lockutils.external_lock(name, lock_file_prefix=NOVA_LOCK_PREFIX,
                                       lock_path=self.path)
        if wait > 0:
            got = lock.acquire(blocking=True, timeout=wait, delay=0.05,
                               max_delay=0.5)
        else:
            got = lock.acquire(blocking=False)
        if got:
            self.held[name] = lock
        return bool(got)

    def acquire_all(self, names: Iterable[str], wait: float = 0.0) -> bool:
        """Take every lock in ``names`` or none of those not held before."""
        taken: List[str] = []
        for name in names:
            if name in self.held:
                continue
            if not self.acquire(name, wait):
                for t in taken:
                    self.release(t)
                return False
            taken.append(name)
        return True

    def release(self, name: str) -> None:
        lock = self.held.pop(name, None)
        if lock is not None:
            lock.release()

    def release_all(self) -> None:
        for name in list(self.held):
            self.release(name)

    def __enter__(self) -> 'NovaLocks':
        return self

    def __exit__(self, *exc) -> None:
        self.release_all()
