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

"""Human and machine renderings of a pass."""

import json
from typing import List

from glance_ext.cache_manager import cachepass
from glance_ext.common import sizes


def human_age(seconds) -> str:
    if seconds is None:
        return '-'
    s = int(seconds)
    if s >= 86400:
        return '%dd%dh' % (s // 86400, s % 86400 // 3600)
    if s >= 3600:
        return '%dh%dm' % (s // 3600, s % 3600 // 60)
    if s >= 60:
        return '%dm%ds' % (s // 60, s % 60)
    return '%ds' % s


def _detail(entry: cachepass.Entry) -> str:
    parts = []
    if entry.image:
        parts.append('image %s (%s)' % (entry.image.get('id'),
                                        entry.image.get('name') or ''))
    if entry.users:
        parts.append('used by ' + ', '.join(entry.users))
    if entry.reason:
        parts.append(entry.reason)
    return '; '.join(parts)


def as_table(result: cachepass.PassResult) -> str:
    rows: List[tuple] = [('NAME', 'CLASS', 'ON DISK', 'AGE', 'STATE',
                          'DETAIL')]
    for e in sorted(result.entries.values(), key=lambda e: e.name):
        age = e.age
        if age is None:
            age = result.started - e.mtime
        rows.append((e.name, e.kind.value, sizes.human(e.size),
                     human_age(age), e.state, _detail(e)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ['  '.join(c.ljust(w) for c, w in zip(r[:5], widths)) + '  '
             + r[5] for r in rows]
    lines.append('')
    for state, (count, size) in sorted(result.totals_by_state().items()):
        lines.append('%-12s %6d files  %s' % (state, count,
                                              sizes.human(size)))
    lines.append('disks scanned: %d' % result.disks_scanned)
    if result.storage:
        lines.append('storage: %s (%s)' % (
            'shared' if result.storage.shared else 'local',
            result.storage.reason))
    for reason in result.blocked_reasons:
        lines.append('NOT REMOVING: %s' % reason)
    for reason in result.keep_all_reasons:
        lines.append('unreadable: %s' % reason)
    for name, users in sorted(result.missing.items()):
        lines.append('missing base %s referenced by %s'
                     % (name, ', '.join(users)))
    for path, alloc, want in result.underallocated:
        lines.append('not fully allocated: %s (%s of %s)'
                     % (path, sizes.human(alloc), sizes.human(want)))
    if result.quarantined:
        lines.append('quarantined: %d files, %s' % (
            len(result.quarantined), sizes.human(result.reclaimed_bytes)))
    if result.purged:
        lines.append('%s: %d files, %s' % (
            'would purge' if result.dry_run else 'purged',
            len(result.purged), sizes.human(result.purged_bytes)))
    return '\n'.join(lines)


def as_json(result: cachepass.PassResult) -> str:
    return json.dumps(result.as_dict(), indent=2, sort_keys=True)
