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

"""The in-use set, built from the disks themselves.

Nova decides "in use" from the database (image_ref, kernel_id, ramdisk_id
of instances on hosts with a fresh heartbeat) plus the backing file of the
one file named ``disk`` per instance directory. That misses the second
ephemeral disk, the rescue disk, ``*_resize`` directories of unconfirmed
resizes, hosts whose heartbeat is older than 24 h, and snapshot deltas.
Here every file in every directory under ``instances_path`` (two levels, so
``snapshots/tmpXXXX/`` deltas count) is read, and its whole backing chain
followed: whatever a disk can reach is in use, whoever owns the directory.

A disk that cannot be read or parsed may reference anything, so the scan
then says ``keep_all`` and the pass removes nothing.
"""

import os
import stat
from typing import Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

from oslo_log import log as logging

from glance_ext.cache_manager import diskheader

LOG = logging.getLogger(__name__)

# Files nova keeps in instance directories that are never disks; skipping
# them only saves reads, a disk under any other name is still inspected.
NOT_DISKS = frozenset({'console.log', 'libvirt.xml', 'disk.info'})
# qemu protocols that cannot be a file in the local cache.
REMOTE_PROTOCOLS = ('rbd:', 'nbd:', 'iscsi:', 'http:', 'https:', 'ftp:',
                    'ftps:', 'ssh:', 'gluster:', 'nfs:', 'sheepdog:')
PREALLOCATED_DISKS = ('disk', 'disk.local', 'disk.swap', 'disk.rescue')

Signature = Tuple[int, int, int, int]


class Record(NamedTuple):
    signature: Signature
    header: Optional[diskheader.DiskHeader]


class ScanResult:
    """What one scan found; ``records`` seeds the next (incremental) scan."""

    def __init__(self) -> None:
        self.in_use: Dict[str, Set[str]] = {}
        self.keep_all_reasons: List[str] = []
        self.missing: Dict[str, Set[str]] = {}
        self.records: Dict[str, Record] = {}
        self.disks_scanned = 0
        self.headers_read = 0
        self.underallocated: List[Tuple[str, int, int]] = []

    @property
    def keep_all(self) -> bool:
        return bool(self.keep_all_reasons)


class Scanner:
    """Scans ``instances_path`` for references into the cache directory."""

    def __init__(self, instances_path: str, base_dir: str,
                 skip_dirs: Iterable[str] = (), max_depth: int = 16,
                 check_preallocation: bool = False) -> None:
        self.instances_path = instances_path
        self.base_dir = base_dir
        self.base_real = os.path.realpath(base_dir)
        self.subdirectory_name = os.path.basename(base_dir.rstrip('/'))
        # Directories never scanned, by real path and as configured: the
        # top level is compared by name (no realpath per directory, which
        # would cost an lstat per path component on every instance).
        skip = [base_dir, os.path.join(instances_path, 'locks')]
        skip += list(skip_dirs)
        self.skip = {os.path.realpath(p) for p in skip}
        self.skip |= {os.path.normpath(os.path.abspath(p)) for p in skip}
        self.top_real = os.path.realpath(instances_path)
        self.max_depth = max_depth
        self.check_preallocation = check_preallocation
        self._present: Set[str] = set()

    # -- public -----------------------------------------------------------

    def scan(self, previous: Optional[ScanResult] = None) -> ScanResult:
        """Scan every instance directory; reuse unchanged files' headers."""
        result = ScanResult()
        old = previous.records if previous else {}
        self._stats: Dict[str, Optional[os.stat_result]] = {}
        try:
            self._present = set(os.listdir(self.base_dir))
        except FileNotFoundError:
            self._present = set()
        try:
            tops = list(os.scandir(self.instances_path))
        except OSError as exc:
            result.keep_all_reasons.append(
                'cannot list %s: %s' % (self.instances_path, exc))
            return result
        for top in tops:
            if not self._is_scanned_dir(top):
                continue
            self._scan_dir(top.path, top.name, result, old, level=1)
        return result

    # -- internals --------------------------------------------------------

    def _is_scanned_dir(self, entry: os.DirEntry) -> bool:
        try:
            if not entry.is_dir(follow_symlinks=False):
                return False
        except OSError:
            return False
        # Not a symlink, so its real path is the real top + its name.
        return (os.path.join(self.top_real, entry.name) not in self.skip
                and os.path.normpath(os.path.abspath(entry.path))
                not in self.skip)

    def _scan_dir(self, path: str, owner: str, result: ScanResult,
                  old: Dict[str, Record], level: int) -> None:
        try:
            entries = list(os.scandir(path))
        except FileNotFoundError:
            return          # instance deleted meanwhile
        except OSError as exc:
            result.keep_all_reasons.append('cannot list %s: %s'
                                           % (path, exc))
            return
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if level < 2 and (os.path.realpath(entry.path)
                                      not in self.skip):
                        self._scan_dir(entry.path, owner + '/' + entry.name,
                                       result, old, level + 1)
                    continue
            except OSError:
                continue
            if entry.name in NOT_DISKS:
                continue
            self._scan_disk(entry, owner, result, old)

    def _scan_disk(self, entry: os.DirEntry, owner: str, result: ScanResult,
                   old: Dict[str, Record]) -> None:
        try:
            is_link = entry.is_symlink()
            st = entry.stat() if not is_link else os.stat(entry.path)
        except FileNotFoundError:
            if is_link:
                # A dangling symlink still names its target.
                self._note_reference(os.readlink(entry.path), entry.path,
                                     owner, result)
            return
        except OSError as exc:
            result.keep_all_reasons.append('cannot stat %s: %s'
                                           % (entry.path, exc))
            return
        if not stat.S_ISREG(st.st_mode):
            return
        result.disks_scanned += 1
        if is_link:
            self._note_reference(os.path.realpath(entry.path), entry.path,
                                 owner, result)
        header = self._header(entry.path, st, result, old)
        if header is None:
            return
        if (self.check_preallocation and header.error is None
                and entry.name.startswith(PREALLOCATED_DISKS)):
            wanted = header.virtual_size or st.st_size
            allocated = st.st_blocks * 512
            if allocated < wanted:
                result.underallocated.append((entry.path, allocated, wanted))
        self._follow(entry.path, header, owner, result, old, depth=0,
                     seen={entry.path})

    def _header(self, path: str, st: os.stat_result, result: ScanResult,
                old: Dict[str, Record]) -> Optional[diskheader.DiskHeader]:
        sig = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        rec = old.get(path) or result.records.get(path)
        if rec is not None and rec.signature == sig:
            result.records[path] = rec
            return rec.header
        try:
            header = diskheader.read_disk_header(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            result.keep_all_reasons.append('cannot read %s: %s'
                                           % (path, exc))
            return None
        result.headers_read += 1
        result.records[path] = Record(sig, header)
        return header

    def _follow(self, path: str, header: diskheader.DiskHeader, owner: str,
                result: ScanResult, old: Dict[str, Record], depth: int,
                seen: Set[str]) -> None:
        if header.error:
            result.keep_all_reasons.append('%s: %s' % (path, header.error))
            return
        for ref in header.references:
            target = self._resolve(ref, os.path.dirname(path), path, result)
            if target is None:
                continue
            self._note_reference(target, path, owner, result)
            # Cycles through symlinks are not seen here but still end at
            # max_depth, which also keeps everything.
            if target in seen:
                result.keep_all_reasons.append(
                    '%s: circular backing chain through %s' % (path, target))
                return
            if depth + 1 >= self.max_depth:
                result.keep_all_reasons.append(
                    '%s: backing chain deeper than %d'
                    % (path, self.max_depth))
                return
            st = self._stat_once(target, result)
            if st is None or not stat.S_ISREG(st.st_mode):
                continue
            sub = self._header(target, st, result, old)
            if sub is not None:
                self._follow(target, sub, owner, result, old, depth + 1,
                             seen | {target})

    def _stat_once(self, path: str, result: ScanResult
                   ) -> Optional[os.stat_result]:
        """stat a backing file once per scan: thousands of disks share a
        handful of bases."""
        if path in self._stats:
            return self._stats[path]
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            result.keep_all_reasons.append('cannot stat %s: %s'
                                           % (path, exc))
            st = None
        self._stats[path] = st
        return st

    def _resolve(self, ref: str, disk_dir: str, path: str,
                 result: ScanResult) -> Optional[str]:
        """A backing reference as a local path; None if it is remote."""
        if ref.startswith('file:'):
            ref = ref[len('file:'):]
        elif ref.startswith('json:'):
            # A json: spec can name any file through any driver option.
            result.keep_all_reasons.append(
                '%s: json: backing specification not followed' % path)
            return None
        elif ref.startswith(REMOTE_PROTOCOLS):
            return None
        # qemu resolves a relative backing name against the directory of
        # the image that names it, not the current directory.
        return os.path.normpath(os.path.join(disk_dir, ref))

    def _note_reference(self, target: str, via: str, owner: str,
                        result: ScanResult) -> None:
        name = self.base_name_of(target)
        if name is None:
            return
        result.in_use.setdefault(name, set()).add(owner)
        if name not in self._present:
            result.missing.setdefault(name, set()).add(via)

    def base_name_of(self, target: str) -> Optional[str]:
        """The cache entry ``target`` names, if it points into the cache.

        Besides the real path, a path whose parent directory carries the
        cache's name counts: on shared storage mounted at different paths a
        disk written by another host names the cache by that host's path,
        and nova itself joins only the basename to its own cache directory.
        """
        parent = os.path.dirname(target)
        if os.path.basename(parent) == self.subdirectory_name:
            return os.path.basename(target)
        try:
            if os.path.realpath(parent) == self.base_real:
                return os.path.basename(target)
        except OSError:
            pass
        return None
