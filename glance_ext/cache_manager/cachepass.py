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

"""One pass of the cache manager, from listing ``_base`` to purging.

Order of a pass and why:
1. classify ``_base`` by nova's names (unknown names are never touched);
2. scan every disk of every instance directory for references, following
   whole backing chains (a disk that cannot be read blocks all removals);
3. restore from quarantine any base a disk turns out to reference;
4. check what forbids acting at all: an unreadable disk, nova's own remover
   being on, a stale host on shared storage, another manager elected;
5. age unused files (mtime like nova, or the unused-since record);
6. for each candidate take nova's lock(s), re-scan (incrementally) and
   re-check age *under the lock*, then move it to quarantine;
7. purge quarantined files past the grace period.
"""

import enum
import os
import time
from typing import Dict, List, Optional

from oslo_config import cfg
from oslo_log import log as logging

from glance_ext import exceptions
from glance_ext.cache_manager import ages
from glance_ext.cache_manager import election as election_mod
from glance_ext.cache_manager import glance_lookup
from glance_ext.cache_manager import locking
from glance_ext.cache_manager import naming
from glance_ext.cache_manager import quarantine as quarantine_mod
from glance_ext.cache_manager import scanner as scanner_mod
from glance_ext.cache_manager import sharedstorage

LOG = logging.getLogger(__name__)


class FileState(str, enum.Enum):
    """What a pass decided about a cache file (report and metric label)."""

    IN_USE = 'in-use'
    TOO_YOUNG = 'too-young'
    REMOVABLE = 'removable'        # dry run: would be quarantined
    QUARANTINED = 'quarantined'    # moved to quarantine this pass
    KEPT = 'kept'                  # removable but a pass-wide block applies
    LOCKED = 'locked'              # nova held its lock: next pass
    UNKNOWN = 'unknown'            # not a name nova creates: never touched
    GONE = 'gone'                  # vanished during the pass

    def __str__(self) -> str:
        return self.value


IN_USE = FileState.IN_USE
TOO_YOUNG = FileState.TOO_YOUNG
REMOVABLE = FileState.REMOVABLE
QUARANTINED = FileState.QUARANTINED
KEPT = FileState.KEPT
LOCKED = FileState.LOCKED
UNKNOWN = FileState.UNKNOWN
GONE = FileState.GONE

BATCH = 200                    # locks held at once (one fd each)


class Entry:
    """One file of the cache and what the pass decided about it."""

    def __init__(self, name: str, kind: naming.Classified,
                 size: int, mtime: float) -> None:
        self.name = name
        self.kind = kind.kind
        self.fingerprint = kind.fingerprint
        self.size = size
        self.mtime = mtime
        self.age: Optional[float] = None
        self.max_age: Optional[float] = None
        self.state = UNKNOWN
        self.users: List[str] = []
        self.reason = ''
        self.image: Optional[dict] = None
        self.deleted_in_glance = False

    def as_dict(self) -> dict:
        return {'name': self.name, 'class': self.kind.value,
                'bytes_on_disk': self.size,
                'age_seconds': None if self.age is None else round(self.age),
                'minimum_age_seconds': self.max_age, 'state': self.state.value,
                'in_use_by': self.users, 'reason': self.reason,
                'image': self.image,
                'deleted_in_glance': self.deleted_in_glance}


class PassResult:

    def __init__(self, base_dir: str, dry_run: bool) -> None:
        self.base_dir = base_dir
        self.dry_run = dry_run
        self.started = time.time()
        self.finished = self.started
        self.entries: Dict[str, Entry] = {}
        self.keep_all_reasons: List[str] = []
        self.blocked_reasons: List[str] = []
        self.storage: Optional[sharedstorage.StorageInfo] = None
        self.stale_hosts: Dict[str, float] = {}
        self.reclaimed_bytes = 0
        self.purged_bytes = 0
        self.purged: List[dict] = []
        self.quarantine_bytes = 0
        self.quarantined: List[str] = []
        self.auto_restored: List[str] = []
        self.missing: Dict[str, List[str]] = {}
        self.underallocated: List[tuple] = []
        self.disks_scanned = 0

    def totals_by_state(self) -> Dict[str, tuple]:
        out: Dict[str, list] = {}
        for e in self.entries.values():
            t = out.setdefault(e.state.value, [0, 0])
            t[0] += 1
            t[1] += e.size
        return {k: tuple(v) for k, v in out.items()}

    def as_dict(self) -> dict:
        return {
            'base_dir': self.base_dir, 'dry_run': self.dry_run,
            'started': self.started, 'finished': self.finished,
            'disks_scanned': self.disks_scanned,
            'keep_all_reasons': self.keep_all_reasons,
            'blocked_reasons': self.blocked_reasons,
            'storage': self.storage._asdict() if self.storage else None,
            'stale_hosts': self.stale_hosts,
            'reclaimed_bytes': self.reclaimed_bytes,
            'purged_bytes': self.purged_bytes, 'purged': self.purged,
            'quarantine_bytes': self.quarantine_bytes,
            'quarantined': self.quarantined,
            'auto_restored': self.auto_restored,
            'missing_bases': self.missing,
            'underallocated_disks': [
                {'path': p, 'allocated': a, 'expected': w}
                for p, a, w in self.underallocated],
            'totals_by_state': {k: {'files': c, 'bytes': b} for k, (c, b)
                                in self.totals_by_state().items()},
            'files': [e.as_dict() for e in sorted(
                self.entries.values(), key=lambda e: e.name)],
        }


def base_dir_of(conf: cfg.ConfigOpts) -> str:
    return os.path.join(conf.instances_path, conf.image_cache.subdirectory_name)


class CachePass:
    """Runs passes against one nova configuration."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self.cm = conf.cache_manager
        self.base_dir = base_dir_of(conf)
        self.state_dir = self.cm.state_dir
        self.quarantine = quarantine_mod.Quarantine(
            os.path.join(self.state_dir, 'quarantine'), self.base_dir)
        self.scanner = scanner_mod.Scanner(
            conf.instances_path, self.base_dir, skip_dirs=[self.state_dir],
            max_depth=self.cm.max_backing_chain_depth,
            check_preallocation=conf.preallocate_images == 'space')
        self._previous_scan: Optional[scanner_mod.ScanResult] = None

    # -- helpers ------------------------------------------------------------

    def _max_age(self, kind: naming.BaseClass) -> float:
        ic = self.conf.image_cache
        if kind in (naming.BaseClass.RESIZED, naming.BaseClass.RESIZED_LEGACY):
            return ic.remove_unused_resized_minimum_age_seconds
        if kind in naming.LEFTOVER_CLASSES:
            return self.cm.leftover_minimum_age_seconds
        return ic.remove_unused_original_minimum_age_seconds

    def _stale_threshold(self) -> float:
        if self.cm.stale_host_seconds:
            return self.cm.stale_host_seconds
        interval = self.conf.image_cache.manager_interval
        return 3 * (interval if interval > 0 else 2400)

    def _list_base(self, result: PassResult) -> None:
        for de in os.scandir(self.base_dir):
            kind = naming.classify(de.name)
            try:
                st = de.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            entry = Entry(de.name, kind, st.st_blocks * 512, st.st_mtime)
            if not de.is_file(follow_symlinks=False):
                entry.kind = naming.BaseClass.UNKNOWN
                entry.reason = 'not a regular file'
            result.entries[de.name] = entry

    def _locks_for(self, entry: Entry) -> tuple:
        if entry.kind in naming.LEFTOVER_CLASSES:
            # Nova writes x.part and x.converted under the lock of x.
            return (naming.owning_base(entry.name),)
        return naming.creation_locks(entry.name)

    def _age(self, entry: Entry, record: Optional[ages.UnusedSinceRecord],
             now: float) -> Optional[float]:
        if record is not None and entry.kind in naming.AGED_CLASSES:
            return record.age(entry.name, now)
        return ages.mtime_age(os.path.join(self.base_dir, entry.name), now)

    # -- the pass -----------------------------------------------------------

    def run(self, dry_run: bool = False, force: bool = False,
            now: Optional[float] = None) -> PassResult:
        result = PassResult(self.base_dir, dry_run)
        LOG.debug('Cache pass over %s (dry run: %s, forced: %s)',
                  self.base_dir, dry_run, force)
        if not os.path.isdir(self.base_dir):
            LOG.debug('Skipping verification, no base directory at %s',
                      self.base_dir)
            result.finished = time.time()
            return result
        if not dry_run:
            os.makedirs(self.state_dir, exist_ok=True)
            self.quarantine.ensure()
        now = now or time.time()

        scan = self.scanner.scan(self._previous_scan)
        self._previous_scan = scan
        result.disks_scanned = scan.disks_scanned
        result.keep_all_reasons = list(scan.keep_all_reasons)
        result.missing = {k: sorted(v) for k, v in scan.missing.items()}
        result.underallocated = scan.underallocated
        for path, allocated, wanted in scan.underallocated:
            LOG.warning('preallocate_images = space but %(path)s has '
                        '%(alloc)d of %(want)d bytes allocated',
                        {'path': path, 'alloc': allocated, 'want': wanted})
        for reason in scan.keep_all_reasons:
            LOG.warning('Keeping every base file: %s', reason)

        self._auto_restore(scan, result, dry_run)
        # Listed after the restore so a restored base is reported in use.
        self._list_base(result)
        leader = self._check_blocks(result, force, dry_run)
        leading = leader is not None and leader.held
        try:
            images = self._glance_images()
            record = None
            if self.cm.age_source == 'unused_since':
                record = ages.UnusedSinceRecord(
                    os.path.join(self.state_dir, 'unused-since.json'))
            candidates = self._decide(result, scan, images, record, now,
                                      dry_run)
            if candidates and not dry_run and not result.blocked_reasons:
                self._remove(candidates, result, record, leader)
            if leading:
                # Purge runs even when removal is blocked (quarantined files
                # are out of the cache and were unused when moved), but only
                # by the elected manager.
                result.purged = self.quarantine.purge_expired(
                    self.cm.quarantine_grace_seconds)
            elif dry_run:
                result.purged = self.quarantine.purge_expired(
                    self.cm.quarantine_grace_seconds, dry_run=True)
            result.purged_bytes = sum(int(m.get('bytes', 0))
                                      for m in result.purged)
            result.quarantine_bytes = sum(
                int(m.get('bytes', 0))
                for m in self.quarantine.entries(not dry_run).values()) \
                if os.path.isdir(self.quarantine.path) else 0
            if record is not None and not dry_run:
                record.save()
        finally:
            if leader is not None:
                leader.stop()
        result.finished = time.time()
        return result

    def _auto_restore(self, scan, result: PassResult, dry_run: bool) -> None:
        """A referenced base found in quarantine goes straight back."""
        if not scan.missing:
            return
        quarantined = self.quarantine.entries(not dry_run) if os.path.isdir(
            self.quarantine.path) else {}
        for name, users in sorted(scan.missing.items()):
            if name in quarantined:
                LOG.error('Base file %(name)s is in quarantine but used by '
                          '%(users)s; restoring it',
                          {'name': name, 'users': ', '.join(sorted(users))})
                if dry_run:
                    continue
                with locking.NovaLocks(self.conf.instances_path) as locks:
                    if not locks.acquire(name, wait=30):
                        continue
                    try:
                        self.quarantine.restore(name)
                    except quarantine_mod.QuarantineError as exc:
                        # Another manager restored it first, or nova
                        # fetched it again: either way it is back.
                        LOG.info('Not restoring %(name)s: %(exc)s',
                                 {'name': name, 'exc': exc})
                        continue
                    result.auto_restored.append(name)
            else:
                LOG.warning('%(name)s is used by %(users)s but is not in '
                            'the image cache',
                            {'name': name, 'users': ', '.join(sorted(users))})

    def _check_blocks(self, result: PassResult, force: bool,
                      dry_run: bool) -> Optional[election_mod.Election]:
        """Record every reason not to remove anything in this pass."""
        if result.keep_all_reasons:
            result.blocked_reasons.append(
                'a disk could not be read, so any base may be in use')
        if (self.conf.image_cache.remove_unused_base_images
                and not self.cm.act_when_nova_removes):
            result.blocked_reasons.append(
                'nova removes unused bases itself ([image_cache] '
                'remove_unused_base_images = True); set it to False in '
                'nova.conf or [cache_manager] act_when_nova_removes = True')
        try:
            storage = sharedstorage.detect(self.conf.instances_path,
                                           self.conf.host)
        except (OSError, ValueError) as exc:
            result.blocked_reasons.append('cannot read the storage registry: '
                                          '%s' % exc)
            storage = None
        result.storage = storage
        if storage is not None:
            stale = sharedstorage.stale_hosts(
                {h: t for h, t in storage.hosts.items()
                 if h != self.conf.host},
                self._stale_threshold(), self.cm.decommissioned_hosts)
            result.stale_hosts = stale
            for host, age in sorted(stale.items()):
                msg = ('host %s sharing %s has not registered for %d s '
                       '(threshold %d s)' % (host, self.conf.instances_path,
                                             age, self._stale_threshold()))
                if force:
                    LOG.warning('Forced: ignoring %s', msg)
                else:
                    LOG.warning('Not removing anything: %s; its instances '
                                'may still be created or written. Bring it '
                                'back, list it in [cache_manager] '
                                'decommissioned_hosts, or use --force', msg)
                    result.blocked_reasons.append(msg)
        if dry_run:
            return None
        try:
            leader = election_mod.Election(self.cm.coordination_url,
                                           self.state_dir, self.conf.host)
        except (exceptions.ToolUnavailable,
                exceptions.ConfigurationError) as exc:
            # Without the election nobody may act: report only.
            LOG.error('Not removing anything: %s', exc)
            result.blocked_reasons.append(
                'the election cannot be held: %s' % exc)
            return None
        try:
            leading = leader.try_lead()
        except exceptions.ToolUnavailable as exc:
            LOG.error('Not removing anything: %s', exc)
            result.blocked_reasons.append(
                'the election cannot be held: %s' % exc)
            leader.stop()
            return None
        if not leading:
            result.blocked_reasons.append(
                'another cache manager is acting on this storage')
            LOG.info('Another cache manager holds %s; this pass only '
                     'reports', leader.lock_name.decode())
        return leader

    def _glance_images(self) -> Optional[dict]:
        if not self.cm.glance_lookup:
            return None
        if not self.cm.glance_endpoint:
            LOG.warning('[cache_manager] glance_lookup is on but '
                        'glance_endpoint is not set; skipping the lookup')
            return None
        try:
            return glance_lookup.images_by_fingerprint(
                self.cm.glance_endpoint, self.cm.glance_token)
        except Exception as exc:  # any client/transport failure
            LOG.warning('Glance lookup failed, images are not named in '
                        'this pass: %s', exc)
            return None

    def _decide(self, result: PassResult, scan, images, record, now,
                dry_run: bool) -> List[Entry]:
        unused = []
        active = []
        removable = []
        candidates = []
        for name, entry in sorted(result.entries.items()):
            if images is not None and entry.fingerprint:
                entry.image = images.get(entry.fingerprint)
                entry.deleted_in_glance = entry.image is None
            if entry.kind == naming.BaseClass.UNKNOWN:
                entry.state = UNKNOWN
                entry.users = sorted(scan.in_use.get(name, ()))
                entry.reason = entry.reason or 'not a name nova creates'
                LOG.warning('Unrecognised file in the image cache, never '
                            'removed: %s',
                            os.path.join(self.base_dir, name))
                continue
            if name in scan.in_use:
                # Any class: a disk referencing even a leftover keeps it.
                entry.state = IN_USE
                entry.users = sorted(scan.in_use[name])
                active.append(os.path.join(self.base_dir, name))
                continue
            if entry.kind in naming.AGED_CLASSES:
                unused.append(name)
        if record is not None:
            record.update(self.base_dir, unused, now)
        elif self.cm.touch_in_use and not dry_run:
            for path in active:
                try:
                    os.utime(path)
                except OSError as exc:
                    LOG.debug('Cannot touch %s: %s', path, exc)
        if active:
            LOG.info('Active base files: %s', ' '.join(active))

        for name, entry in sorted(result.entries.items()):
            if entry.state in (IN_USE,) or entry.kind == naming.BaseClass.UNKNOWN:
                continue
            path = os.path.join(self.base_dir, name)
            if entry.kind in naming.AGED_CLASSES:
                LOG.warning('Unknown base file: %s', path)
                removable.append(path)
            elif entry.kind == naming.BaseClass.LEGACY_INFO:
                owner = naming.owning_base(name)
                if owner in result.entries:
                    entry.state = KEPT
                    entry.reason = 'its base %s still exists' % owner
                    continue
            entry.age = self._age(entry, record, now)
            if entry.age is None:
                entry.age = 0.0
            entry.max_age = self._max_age(entry.kind)
            if entry.age < entry.max_age:
                entry.state = TOO_YOUNG
                entry.reason = 'unused, %d s old < %d s' % (entry.age,
                                                            entry.max_age)
                if entry.kind in naming.AGED_CLASSES:
                    LOG.info('Base, swap or ephemeral file too young to '
                             'remove: %s', path)
                continue
            entry.reason = 'unused, %d s old >= %d s' % (entry.age,
                                                         entry.max_age)
            if entry.deleted_in_glance:
                entry.reason += '; image deleted in Glance'
            entry.state = REMOVABLE if not result.blocked_reasons else KEPT
            if result.blocked_reasons:
                entry.reason += '; kept: ' + '; '.join(result.blocked_reasons)
            candidates.append(entry)
        if removable:
            LOG.info('Removable base files: %s', ' '.join(removable))
        # Bases of images deleted in Glance first (no new instance can use
        # them), then the oldest.
        candidates.sort(key=lambda e: (not e.deleted_in_glance, -e.age))
        return candidates

    def _remove(self, candidates: List[Entry], result: PassResult,
                record, leader=None) -> None:
        wait = self.cm.lock_wait_seconds
        for start in range(0, len(candidates), BATCH):
            if leader is not None and not leader.still_leading():
                # The backend stopped confirming our lock: another manager
                # may be elected once it expires. Stop acting.
                reason = ('the election lock on %s could not be refreshed; '
                          'stopped removing' % leader.backend)
                LOG.error('Not removing more: %s', reason)
                result.blocked_reasons.append(reason)
                for entry in candidates[start:]:
                    if entry.state == REMOVABLE:
                        entry.state = KEPT
                return
            batch = candidates[start:start + BATCH]
            with locking.NovaLocks(self.conf.instances_path) as locks:
                held = []
                for entry in batch:
                    if locks.acquire_all(self._locks_for(entry), wait):
                        held.append(entry)
                    else:
                        entry.state = LOCKED
                        entry.reason = ('nova holds its lock (creating a disk '
                                        'from it or fetching it); next pass')
                if not held:
                    continue
                # Everything below runs while nova cannot create a disk
                # from any held base: re-scan and re-age under the locks.
                scan = self.scanner.scan(self._previous_scan)
                self._previous_scan = scan
                if scan.keep_all:
                    for reason in scan.keep_all_reasons:
                        LOG.warning('Keeping every base file: %s', reason)
                    result.keep_all_reasons.extend(scan.keep_all_reasons)
                    result.blocked_reasons.append(
                        'a disk could not be read during re-check')
                    for entry in candidates[start:]:
                        if entry.state == REMOVABLE:
                            entry.state = KEPT
                    return
                now = time.time()
                for entry in held:
                    self._remove_one(entry, scan, record, now, result)

    def _remove_one(self, entry: Entry, scan, record, now: float,
                    result: PassResult) -> None:
        path = os.path.join(self.base_dir, entry.name)
        if entry.name in scan.in_use:
            entry.state = IN_USE
            entry.users = sorted(scan.in_use[entry.name])
            entry.reason = 'became in use during the pass'
            if record is not None:
                record.forget(entry.name)
            return
        age = self._age(entry, record, now)
        if age is None and not os.path.exists(path):
            entry.state = GONE
            return
        if age is None or age < entry.max_age:
            entry.state = TOO_YOUNG
            entry.reason = 'touched during the pass'
            return
        touched = ages.mtime_age(path, now)
        if touched is not None and touched < self.cm.recent_touch_guard_seconds:
            # Nova touches a base after fetching it and before creating a
            # disk on it under a second lock acquisition: never remove in
            # that window, even when the unused-since clock says old.
            entry.state = TOO_YOUNG
            entry.reason = ('modified %d s ago (< recent_touch_guard_seconds '
                            '%d); nova may be about to create a disk on it'
                            % (touched, self.cm.recent_touch_guard_seconds))
            return
        LOG.info('Removing base, swap or ephemeral file: %s', path)
        try:
            size = self.quarantine.put(entry.name, entry.reason)
        except FileNotFoundError:
            entry.state = GONE
            return
        except OSError as exc:
            LOG.error('Failed to remove %(base_file)s, error was %(error)s',
                      {'base_file': path, 'error': exc})
            entry.state = KEPT
            entry.reason = 'quarantine failed: %s' % exc
            return
        entry.state = QUARANTINED
        result.reclaimed_bytes += size
        result.quarantined.append(entry.name)
        if record is not None:
            record.forget(entry.name)
