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

"""The in-use scan over real qemu-img trees."""

import os

from glance_ext.cache_manager import scanner
from glance_ext.testing import cache_manager_trees as trees
from glance_ext.testing.cache_manager_trees import IMG


def scan(tree, **kw):
    return scanner.Scanner(tree.instances, tree.base_dir, **kw).scan()


def test_every_disk_kind_and_directory_counts(standard_tree):
    res = scan(standard_tree)
    assert not res.keep_all_reasons
    expected = {
        IMG['root']: {'inst-a'},
        'ephemeral_1_0706d66': {'inst-a'},
        'ephemeral_2_0706d66': {'inst-a'},     # second ephemeral
        'swap_512': {'inst-a'},
        IMG['rescue']: {'inst-b'},             # disk.rescue
        IMG['resize'] + '_20': {'inst-c_resize'},
        IMG['deleted']: {'inst-d_del'},
        IMG['snapchain']: {'inst-e'},          # through an overlay
        IMG['relative']: {'inst-f'},           # relative backing name
        IMG['resized_src'] + '_sm': {'inst-g'},
    }
    assert res.in_use == expected
    assert res.missing == {}


def test_missing_base_and_other_mount_path(tree):
    # A disk written by a host that mounts the shared storage elsewhere
    # names the cache by that host's path; nova joins the basename too.
    tree.disk('i1', 'disk', '/mnt/other/instances/_base/' + 'b' * 40)
    tree.disk('i2', 'disk', '/srv/elsewhere/' + 'c' * 40)
    res = scan(tree)
    assert res.in_use == {'b' * 40: {'i1'}}
    assert res.missing == {'b' * 40: {os.path.join(tree.instances, 'i1',
                                                   'disk')}}


def test_snapshot_deltas_two_levels_down(tree):
    tree.base('d' * 40)
    tree.disk('snapshots/tmpabc', 'x.delta', 'd' * 40)
    assert scan(tree).in_use == {'d' * 40: {'snapshots/tmpabc'}}


def test_symlinked_disk_counts(tree):
    tree.base('e' * 40)
    d = tree.instance_dir('i')
    os.symlink(os.path.join(tree.base_dir, 'e' * 40),
               os.path.join(d, 'kernel'))
    assert scan(tree).in_use == {'e' * 40: {'i'}}


def test_unreadable_disks_keep_everything(tree):
    tree.base('f' * 40)
    for how in ('version', 'backing-size', 'truncated', 'nul-in-name',
                'vmdk'):
        tree.corrupt('bad-' + how, 'disk', how)
    res = scan(tree)
    assert res.keep_all
    assert len(res.keep_all_reasons) == 5


def test_json_backing_and_cycles_keep_everything(tree):
    tree.disk('j', 'disk', 'json:{"file.filename": "%s"}'
              % os.path.join(tree.base_dir, 'a' * 40))
    assert 'json:' in scan(tree).keep_all_reasons[0]
    t2 = trees.Tree(tree.root + '/cyc')
    d = t2.instance_dir('c')
    t2.disk('c', 'a', os.path.join(d, 'b'))
    t2.disk('c', 'b', os.path.join(d, 'a'))
    assert any('circular' in r for r in scan(t2).keep_all_reasons)


def test_incremental_rescan_sees_new_disk_and_rebase(tree):
    tree.base('1' * 40)
    tree.base('2' * 40)
    tree.disk('i', 'disk', '1' * 40)
    s = scanner.Scanner(tree.instances, tree.base_dir)
    first = s.scan()
    assert set(first.in_use) == {'1' * 40}
    again = s.scan(first)
    assert again.headers_read == 0 and set(again.in_use) == {'1' * 40}
    tree.disk('j', 'disk', '2' * 40)
    # In-place rebase onto another base (header rewritten, same file).
    import subprocess
    subprocess.run(['qemu-img', 'rebase', '-u', '-F', 'raw', '-b',
                    os.path.join(tree.base_dir, '2' * 40),
                    os.path.join(tree.instances, 'i', 'disk')], check=True)
    third = s.scan(again)
    assert third.in_use == {'2' * 40: {'i', 'j'}}


def test_preallocation_report(tree):
    tree.disk('i', 'disk', None)
    full = tree.raw_disk('k', 'disk', 1 << 20)
    res = scan(tree, check_preallocation=True)
    paths = [p for p, _, _ in res.underallocated]
    assert os.path.join(tree.instances, 'i', 'disk') in paths
    assert full not in paths
