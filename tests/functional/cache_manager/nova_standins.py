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

"""Stand-ins for nova in the concurrency tests, run as real processes.

``hold`` takes nova's lock on a cache file exactly as nova does (an fcntl
lock on ``<instances_path>/locks/nova-<name>``, taken here with a bare
``fcntl.lockf`` so the test does not share code with the manager), prints
``LOCKED`` and, like nova's ``Qcow2.create_image``, optionally creates an
instance disk backed by the file before releasing. It holds for a number
of seconds, or with ``release`` until the test writes a line to its stdin:
a test that must know the lock is still held at a given moment of the
manager's pass (a busy machine can start the manager late) uses that.

``tooz`` holds the manager election lock of a storage through tooz, as a
second manager on another host would, for a number of seconds or until
released the same way.
"""

import fcntl
import os
import subprocess
import sys
import time


def hold(instances: str, name: str, until: str,
         disk: str = '') -> None:
    locks = os.path.join(instances, 'locks')
    os.makedirs(locks, exist_ok=True)
    with open(os.path.join(locks, 'nova-' + name), 'a') as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        print('LOCKED', flush=True)
        if until == 'release':
            sys.stdin.readline()
        else:
            time.sleep(float(until))
        if disk:
            os.makedirs(os.path.dirname(disk), exist_ok=True)
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F',
                            'raw', '-b', os.path.join(instances, '_base',
                                                      name), disk],
                           check=True)
            print('DISK', flush=True)
        fcntl.lockf(f, fcntl.LOCK_UN)


def hold_election(state_dir: str, until: str) -> None:
    from glance_ext.cache_manager import election
    e = election.Election(None, state_dir, 'other-host')
    assert e.try_lead()
    print('LEADER', flush=True)
    if until == 'release':
        sys.stdin.readline()
    else:
        time.sleep(float(until))
    e.stop()


if __name__ == '__main__':
    if sys.argv[1] == 'hold':
        hold(sys.argv[2], sys.argv[3], sys.argv[4],
             sys.argv[5] if len(sys.argv) > 5 else '')
    elif sys.argv[1] == 'tooz':
        hold_election(sys.argv[2], sys.argv[3])
