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

"""Quarantine: a removal that can be undone, and that survives kill -9.

A removable file is renamed into ``<state_dir>/quarantine`` (same
filesystem, so the rename is atomic: at every instant the file is either in
the cache or in quarantine). Its record ``<name>.json`` is written and
fsynced *before* the rename, so a crash between the two leaves a record
without a file, which the next pass drops; a file is never without a
record for long, and one found without one gets a new record dated now
(which only delays its purge).
"""

import json
import os
import time
from typing import Dict, List, Optional

from oslo_log import log as logging
from glance_ext.exceptions import QuarantineError

LOG = logging.getLogger(__name__)

META_SUFFIX = '.json'


class Quarantine:

    def __init__(self, path: str, base_dir: str) -> None:
        self.path = path
        self.base_dir = base_dir

    def ensure(self) -> None:
        os.makedirs(self.path, exist_ok=True)
        if os.stat(self.path).st_dev != os.stat(self.base_dir).st_dev:
            raise QuarantineError(
                'quarantine %s is not on the same filesystem as the cache %s;'
                ' set [cache_manager] state_dir to a directory on the cache\'s'
                ' filesystem' % (self.path, self.base_dir))

    def _meta(self, name: str) -> str:
        return os.path.join(self.path, name + META_SUFFIX)

    def _write_meta(self, name: str, meta: dict) -> None:
        tmp = self._meta(name) + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(meta, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._meta(name))

    def _fsync_dirs(self) -> None:
        for d in (self.path, self.base_dir):
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def put(self, name: str, reason: str, now: Optional[float] = None) -> int:
        """Move cache entry ``name`` into quarantine; returns its size."""
        src = os.path.join(self.base_dir, name)
        st = os.stat(src)
        self._write_meta(name, {'name': name, 'quarantined_at': now or time.time(),
                                'bytes': st.st_blocks * 512,
                                'reason': reason})
        os.rename(src, os.path.join(self.path, name))
        self._fsync_dirs()
        return st.st_blocks * 512

    def entries(self, repair: bool = True) -> Dict[str, dict]:
        """Quarantined files with their records; repairs half-done moves."""
        out: Dict[str, dict] = {}
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return out
        files = {n for n in names if not n.endswith((META_SUFFIX, '.tmp'))}
        metas = {n[:-len(META_SUFFIX)] for n in names
                 if n.endswith(META_SUFFIX)}
        for name in metas - files if repair else ():
            # Killed between writing the record and the rename: the file
            # never left the cache.
            os.unlink(self._meta(name))
        for name in sorted(files):
            try:
                with open(self._meta(name)) as f:
                    meta = json.load(f)
            except (OSError, ValueError):
                st = os.stat(os.path.join(self.path, name))
                meta = {'name': name, 'quarantined_at': time.time(),
                        'bytes': st.st_blocks * 512,
                        'reason': 'record lost; re-dated'}
                if repair:
                    self._write_meta(name, meta)
            out[name] = meta
        return out

    def purge_expired(self, grace: float, dry_run: bool = False,
                      now: Optional[float] = None) -> List[dict]:
        """Delete quarantined files older than ``grace`` seconds."""
        now = now or time.time()
        purged = []
        for name, meta in self.entries(repair=not dry_run).items():
            if now - float(meta.get('quarantined_at', now)) < grace:
                continue
            purged.append(meta)
            if dry_run:
                continue
            LOG.info('Purging quarantined base file %s', name)
            for path in (os.path.join(self.path, name), self._meta(name)):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        return purged

    def restore(self, name: str) -> None:
        """Move ``name`` back into the cache (caller holds nova's lock)."""
        src = os.path.join(self.path, name)
        dst = os.path.join(self.base_dir, name)
        if os.sep in name or name in ('', '.', '..'):
            raise QuarantineError('%r is not a cache file name' % name)
        if not os.path.exists(src):
            raise QuarantineError(
                '%s is not in quarantine %s; "report" lists what is'
                % (name, self.path))
        if os.path.lexists(dst):
            raise QuarantineError(
                '%s already exists in the cache; nova fetched it again. '
                'Nothing restored; the quarantined copy is purged after the '
                'grace period' % dst)
        os.rename(src, dst)
        # Restored means wanted: give it a fresh age so it is not the
        # first thing removed again.
        os.utime(dst)
        os.unlink(self._meta(name))
        self._fsync_dirs()
