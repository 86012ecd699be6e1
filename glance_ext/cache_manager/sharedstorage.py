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

"""Is the cache shared with other hosts, and are they all alive?

Nova registers each host using ``instances_path`` in the JSON file
``<instances_path>/compute_nodes`` (host -> time of its last cache-manager
pass) and simply *drops* hosts older than 24 h, so the instances of a host
that was down for a day stop counting and their bases get removed. Here a
registered host whose heartbeat is older than the threshold blocks every
removal until it comes back, is forced past, or is listed as
decommissioned.

The registry is read under nova's own ``storage-registry-lock``.
"""

import json
import os
import time
from typing import Dict, List, NamedTuple, Optional

from oslo_concurrency import lockutils

from glance_ext.cache_manager import locking

# Filesystems on which another host can see the same files.
NETWORK_FS = frozenset({
    'nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', 'glusterfs', 'fuse.glusterfs',
    'ceph', 'fuse.cephfs', 'gpfs', 'lustre', 'ocfs2', 'gfs2', 'beegfs',
    'fuse.sshfs', 'fuse.s3fs', 'virtiofs', '9p', 'afs', 'fuse.juicefs',
    'fuse.moosefs', 'fuse.lizardfs', 'quobyte', 'fuse.quobyte',
})


class StorageInfo(NamedTuple):
    fs_type: str
    mount_point: str
    hosts: Dict[str, float]            # compute_nodes content
    shared: bool
    reason: str                        # why it counts as shared (or not)


def _unescape(field: str) -> str:
    return (field.replace('\\040', ' ').replace('\\011', '\t')
            .replace('\\012', '\n').replace('\\134', '\\'))


def filesystem_of(path: str, mountinfo: str = '/proc/self/mountinfo'):
    """(fs type, mount point) of the mount holding ``path``."""
    real = os.path.realpath(path)
    best = ('unknown', '/')
    best_len = -1
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(' - ')
            fields = left.split()
            if len(fields) < 5 or not right:
                continue
            mount_point = _unescape(fields[4])
            fs_type = right.split()[0]
            if (real == mount_point or real.startswith(
                    mount_point.rstrip('/') + '/')) and \
                    len(mount_point) >= best_len:
                best, best_len = (fs_type, mount_point), len(mount_point)
    return best


def read_compute_nodes(instances_path: str) -> Dict[str, float]:
    """nova's storage registry, read under nova's registry lock."""
    path = os.path.join(instances_path, 'compute_nodes')
    lock = lockutils.external_lock(
        'storage-registry-lock', lock_file_prefix=locking.NOVA_LOCK_PREFIX,
        lock_path=locking.lock_dir(instances_path))
    lock.acquire(blocking=True, timeout=30)
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ValueError('%s is not valid JSON (%s); nova rewrites it on its '
                         'next pass' % (path, exc))
    finally:
        lock.release()
    if not isinstance(data, dict):
        raise ValueError('%s is not a JSON object of host -> heartbeat'
                         % path)
    return {str(k): float(v) for k, v in data.items()}


def detect(instances_path: str, my_host: str) -> StorageInfo:
    fs_type, mount_point = filesystem_of(instances_path)
    hosts = read_compute_nodes(instances_path)
    others = sorted(h for h in hosts if h != my_host)
    if fs_type in NETWORK_FS:
        return StorageInfo(fs_type, mount_point, hosts, True,
                           'filesystem type %s' % fs_type)
    if others:
        return StorageInfo(fs_type, mount_point, hosts, True,
                           'compute_nodes lists other hosts: %s'
                           % ', '.join(others))
    return StorageInfo(fs_type, mount_point, hosts, False,
                       'local %s filesystem, no other host registered'
                       % fs_type)


def stale_hosts(hosts: Dict[str, float], threshold: float,
                ignored: List[str] = (), now: Optional[float] = None
                ) -> Dict[str, float]:
    """Hosts whose last heartbeat is older than ``threshold`` seconds."""
    now = now or time.time()
    return {h: now - t for h, t in hosts.items()
            if h not in ignored and now - t > threshold}
