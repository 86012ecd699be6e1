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

"""Whole passes over the standard tree: expected removals per policy."""

import json
import os
import time

from glance_ext.cache_manager import cachepass
from glance_ext.testing import cache_manager_trees as trees
from glance_ext.testing.cache_manager_trees import HOUR, IMG, DAY

from glance_ext.testing.cache_manager_trees import make_conf


def quarantined(tree):
    q = os.path.join(tree.instances, 'glance-ext-cache-manager',
                     'quarantine')
    return {n for n in os.listdir(q) if not n.endswith('.json')}


def test_default_policy_removes_exactly_the_expected(standard_tree,
                                                     run_pass):
    before = standard_tree.listing()
    res = run_pass(standard_tree)
    removed = before - standard_tree.listing()
    assert removed == trees.standard_expected_removed()
    assert quarantined(standard_tree) == removed
    assert set(res.quarantined) == removed
    assert res.reclaimed_bytes == 65536 * len(removed)
    states = {n: e.state for n, e in res.entries.items()}
    assert states['README'] == cachepass.UNKNOWN
    assert states[IMG['unused_young']] == cachepass.TOO_YOUNG
    assert states['ephemeral_2_0706d66'] == cachepass.IN_USE


def test_shorter_ages_remove_young_ones_too(standard_tree, run_pass):
    before = standard_tree.listing()
    run_pass(standard_tree,
             image_cache__remove_unused_original_minimum_age_seconds=60,
             image_cache__remove_unused_resized_minimum_age_seconds=60,
             cache_manager__leftover_minimum_age_seconds=30,
             cache_manager__recent_touch_guard_seconds=0)
    removed = before - standard_tree.listing()
    assert removed == trees.standard_expected_removed() | {
        IMG['unused_young'], IMG['unused_young'] + '_10',
        IMG['unused_young'] + '.part'}


def test_longer_resized_age_keeps_resized(standard_tree, run_pass):
    before = standard_tree.listing()
    run_pass(standard_tree,
             image_cache__remove_unused_resized_minimum_age_seconds=3 * HOUR)
    removed = before - standard_tree.listing()
    assert removed == trees.standard_expected_removed() - {
        IMG['unused_old'] + '_10'}


def test_unreachable_election_backend_means_report_only(standard_tree,
                                                        run_pass):
    # Without the election nobody may act. A loopback port nothing listens
    # on is an unreachable backend (real servers: tests/functional/
    # cache_manager/test_election_backends.py).
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    url = 'redis://:pw@127.0.0.1:%d' % port
    before = standard_tree.listing()
    res = run_pass(standard_tree, cache_manager__coordination_url=url)
    assert standard_tree.listing() == before
    (reason,) = res.blocked_reasons
    assert 'the election cannot be held' in reason
    assert 'redis://:***@127.0.0.1:%d' % port in reason
    assert 'pw@' not in reason


def test_nova_removal_on_means_report_only(standard_tree, run_pass):
    before = standard_tree.listing()
    res = run_pass(standard_tree, image_cache__remove_unused_base_images=True)
    assert standard_tree.listing() == before
    assert any('remove_unused_base_images' in r for r in res.blocked_reasons)
    before = standard_tree.listing()
    run_pass(standard_tree, image_cache__remove_unused_base_images=True,
             cache_manager__act_when_nova_removes=True)
    assert before - standard_tree.listing() == \
        trees.standard_expected_removed()


def test_dry_run_changes_nothing(standard_tree, run_pass):
    mtimes = {n: os.stat(os.path.join(standard_tree.base_dir, n)).st_mtime
              for n in standard_tree.listing()}
    res = run_pass(standard_tree, dry_run=True)
    assert {n: os.stat(os.path.join(standard_tree.base_dir, n)).st_mtime
            for n in standard_tree.listing()} == mtimes
    assert not os.path.exists(os.path.join(standard_tree.instances,
                                           'glance-ext-cache-manager'))
    would = {n for n, e in res.entries.items()
             if e.state == cachepass.REMOVABLE}
    assert would == trees.standard_expected_removed()


def test_mtime_mode_touches_in_use_like_nova(standard_tree, run_pass):
    path = os.path.join(standard_tree.base_dir, IMG['root'])
    old = os.stat(path).st_mtime
    run_pass(standard_tree)
    assert os.stat(path).st_mtime > old + DAY


def test_unreadable_disk_blocks_every_removal(standard_tree, run_pass):
    standard_tree.corrupt('inst-z', 'disk', 'version')
    before = standard_tree.listing()
    res = run_pass(standard_tree)
    assert standard_tree.listing() == before
    assert res.keep_all_reasons and res.blocked_reasons
    assert {e.state for e in res.entries.values()} <= {
        cachepass.IN_USE, cachepass.KEPT, cachepass.TOO_YOUNG,
        cachepass.UNKNOWN}


def test_unused_since_ignores_touching(standard_tree, run_pass):
    before = standard_tree.listing()
    opts = dict(cache_manager__age_source='unused_since')
    run_pass(standard_tree, **opts)
    # First sight starts the clock: nothing aged is removed yet (only the
    # leftovers, which are aged by mtime).
    removed = before - standard_tree.listing()
    assert removed == {IMG['unused_old'] + '.part',
                       IMG['root'] + '.converted', trees.sha1('gone') + '.info'}
    record_path = os.path.join(standard_tree.instances,
                               'glance-ext-cache-manager',
                               'unused-since.json')
    with open(record_path) as f:
        record = json.load(f)
    assert IMG['root'] not in record and 'swap_1024' in record
    # Age the record by two days, and have "another tool" touch a file.
    for v in record.values():
        v['since'] -= 2 * DAY
    with open(record_path, 'w') as f:
        json.dump(record, f)
    # An hour-old touch (say, by another host's nova pass) does not reset
    # the clock; a touch just now holds the file back for this pass only.
    hour_ago = time.time() - HOUR
    os.utime(os.path.join(standard_tree.base_dir, 'swap_1024'),
             (hour_ago, hour_ago))
    os.utime(os.path.join(standard_tree.base_dir, 'ephemeral_5_0706d66'))
    res = run_pass(standard_tree, **opts)
    assert 'swap_1024' not in standard_tree.listing()
    assert IMG['unused_young'] not in standard_tree.listing()
    eph = res.entries['ephemeral_5_0706d66']
    assert eph.state == cachepass.TOO_YOUNG
    assert 'recent_touch_guard_seconds' in eph.reason
    res = run_pass(standard_tree, cache_manager__recent_touch_guard_seconds=0,
                   **opts)
    assert 'ephemeral_5_0706d66' not in standard_tree.listing()


def test_purge_after_grace_and_restore(standard_tree, run_pass):
    run_pass(standard_tree)
    conf = make_conf(standard_tree)
    cp = cachepass.CachePass(conf)
    cp.quarantine.restore('swap_1024')
    assert 'swap_1024' in standard_tree.listing()
    assert 'swap_1024' not in quarantined(standard_tree)
    # Restored files get a fresh age: not removed again at once.
    run_pass(standard_tree)
    assert 'swap_1024' in standard_tree.listing()
    res = run_pass(standard_tree, cache_manager__quarantine_grace_seconds=0)
    assert quarantined(standard_tree) == set()
    assert res.purged_bytes == 65536 * 6


def test_referenced_base_in_quarantine_is_restored(standard_tree, run_pass):
    run_pass(standard_tree)
    standard_tree.disk('inst-new', 'disk', 'swap_1024')
    res = run_pass(standard_tree)
    assert res.auto_restored == ['swap_1024']
    assert 'swap_1024' in standard_tree.listing()
    assert res.entries['swap_1024'].state == cachepass.IN_USE
    assert res.entries['swap_1024'].users == ['inst-new']


def test_stale_host_blocks_unless_forced(standard_tree, run_pass):
    standard_tree.compute_nodes({'testhost': 10, 'otherhost': 3 * DAY})
    before = standard_tree.listing()
    res = run_pass(standard_tree)
    assert standard_tree.listing() == before
    assert 'otherhost' in res.stale_hosts
    assert any('otherhost' in r for r in res.blocked_reasons)
    assert res.storage.shared
    res = run_pass(standard_tree, cache_manager__decommissioned_hosts=[
        'otherhost'])
    assert before - standard_tree.listing() == \
        trees.standard_expected_removed()


def test_force_overrides_stale_host(standard_tree, run_pass):
    standard_tree.compute_nodes({'otherhost': 3 * DAY})
    before = standard_tree.listing()
    run_pass(standard_tree, force=True)
    assert before - standard_tree.listing() == \
        trees.standard_expected_removed()


def test_fresh_other_host_does_not_block(standard_tree, run_pass):
    standard_tree.compute_nodes({'otherhost': 600, 'testhost': 5})
    before = standard_tree.listing()
    res = run_pass(standard_tree)
    assert res.storage.shared and not res.blocked_reasons
    assert before - standard_tree.listing() == \
        trees.standard_expected_removed()


def test_no_base_dir_is_a_no_op(tmp_path, run_pass):
    t = trees.Tree(str(tmp_path))
    os.rmdir(t.base_dir)
    res = run_pass(t)
    assert res.entries == {}


def test_report_renders(standard_tree, run_pass):
    from glance_ext.cache_manager import report
    res = run_pass(standard_tree, dry_run=True)
    table = report.as_table(res)
    assert 'used by inst-c_resize' in table and 'README' in table
    data = json.loads(report.as_json(res))
    by_name = {f['name']: f for f in data['files']}
    assert by_name['swap_512']['in_use_by'] == ['inst-a']
    assert by_name['swap_1024']['state'] == 'removable'
    assert by_name['swap_1024']['bytes_on_disk'] == 65536
    assert time.time() - data['started'] < 60
