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

"""Quarantine records, the storage registry, ages, metrics, options."""

import json
import os

import pytest

from glance_ext.cache_manager import ages
from glance_ext.cmd import cache_manager as cli
from glance_ext.cache_manager import metrics
from glance_ext.cache_manager import options
from glance_ext.cache_manager import quarantine
from glance_ext.cache_manager import sharedstorage


def test_quarantine_repairs_half_done_moves(tree):
    q = quarantine.Quarantine(os.path.join(tree.root, 'q'), tree.base_dir)
    q.ensure()
    tree.base('swap_1')
    tree.base('swap_2')
    q.put('swap_1', 'test')
    # Killed after the record, before the rename:
    q._write_meta('swap_2', {'name': 'swap_2', 'quarantined_at': 1})
    # A file whose record was lost:
    os.unlink(os.path.join(q.path, 'swap_1.json'))
    entries = q.entries()
    assert set(entries) == {'swap_1'}
    assert entries['swap_1']['reason'] == 'record lost; re-dated'
    assert not os.path.exists(os.path.join(q.path, 'swap_2.json'))
    assert 'swap_2' in tree.listing()


def test_restore_refuses_clearly(tree):
    q = quarantine.Quarantine(os.path.join(tree.root, 'q'), tree.base_dir)
    q.ensure()
    with pytest.raises(quarantine.QuarantineError, match='not in quarantine'):
        q.restore('swap_9')
    tree.base('swap_1')
    q.put('swap_1', 'test')
    tree.base('swap_1')
    with pytest.raises(quarantine.QuarantineError, match='already exists'):
        q.restore('swap_1')
    with pytest.raises(quarantine.QuarantineError, match='not a cache'):
        q.restore('../x')


def test_mountinfo_longest_prefix(tmp_path):
    mi = tmp_path / 'mountinfo'
    mi.write_text(
        '22 1 8:1 / / rw - ext4 /dev/sda1 rw\n'
        '40 22 0:50 / /var/lib/nova/instances rw shared:1 - nfs4 '
        'srv:/exp rw\n'
        '41 22 0:51 / /var/lib/nova/inst\\040x rw - xfs /dev/sdb rw\n')
    f = sharedstorage.filesystem_of
    assert f('/var/lib/nova/instances/_base', str(mi)) == (
        'nfs4', '/var/lib/nova/instances')
    assert f('/var/lib/nova/instancesX', str(mi)) == ('ext4', '/')
    assert f('/var/lib/nova/inst x/a', str(mi))[0] == 'xfs'


def test_compute_nodes_registry(tree):
    tree.compute_nodes({'a': 10, 'b': 5000})
    hosts = sharedstorage.read_compute_nodes(tree.instances)
    assert set(hosts) == {'a', 'b'}
    assert set(sharedstorage.stale_hosts(hosts, 3600)) == {'b'}
    assert sharedstorage.stale_hosts(hosts, 3600, ['b']) == {}
    with open(os.path.join(tree.instances, 'compute_nodes'), 'w') as f:
        f.write('{not json')
    with pytest.raises(ValueError, match='not valid JSON'):
        sharedstorage.read_compute_nodes(tree.instances)


def test_unused_since_record_survives_corruption(tree):
    path = os.path.join(tree.root, 'rec.json')
    tree.base('swap_1')
    r = ages.UnusedSinceRecord(path)
    r.update(tree.base_dir, ['swap_1'], now=1000.0)
    r.save()
    assert ages.UnusedSinceRecord(path).age('swap_1', now=1500.0) == 500.0
    # Replaced file (new inode; the old one still exists elsewhere, as
    # when nova re-fetches a quarantined base): the clock restarts.
    os.rename(os.path.join(tree.base_dir, 'swap_1'),
              os.path.join(tree.root, 'old'))
    tree.base('swap_1')
    r = ages.UnusedSinceRecord(path)
    r.update(tree.base_dir, ['swap_1'], now=2000.0)
    assert r.age('swap_1', now=2000.0) == 0.0
    with open(path, 'w') as f:
        f.write('garbage')
    assert ages.UnusedSinceRecord(path).entries == {}


def test_metrics_textfile(standard_tree, run_pass, tmp_path):
    res = run_pass(standard_tree)
    m = metrics.Metrics()
    m.observe(res)
    out = tmp_path / 'cm.prom'
    m.write_textfile(str(out))
    text = out.read_text()
    assert 'glance_ext_cache_manager_files{state="in-use"} 10.0' in text
    assert ('glance_ext_cache_manager_reclaimed_bytes_total %s'
            % float(65536 * 7)) in text
    assert 'glance_ext_cache_manager_last_pass_timestamp_seconds' in text


def test_reads_nova_conf_with_deprecated_names(tmp_path):
    conf_file = tmp_path / 'nova.conf'
    conf_file.write_text(
        '[DEFAULT]\nstate_path = /srv/nova\n'
        'image_cache_manager_interval = 600\n'
        'remove_unused_base_images = false\n'
        'compute_driver = libvirt.LibvirtDriver\n'
        '[libvirt]\nremove_unused_resized_minimum_age_seconds = 7\n')
    args = cli.build_parser().parse_args(
        ['--config-file', str(conf_file), 'report'])
    conf = cli.load_config(args)
    assert conf.instances_path == '/srv/nova/instances'
    assert conf.image_cache.manager_interval == 600
    assert conf.image_cache.remove_unused_base_images is False
    assert conf.image_cache.remove_unused_resized_minimum_age_seconds == 7
    assert conf.cache_manager.state_dir == \
        '/srv/nova/instances/glance-ext-cache-manager'


def test_list_opts_names():
    names = {(str(g), o.name) for g, opts in options.list_opts()
             for o in opts}
    for want in [('DEFAULT', 'instances_path'),
                 ('DEFAULT', 'preallocate_images'),
                 ('image_cache', 'subdirectory_name'),
                 ('image_cache', 'remove_unused_base_images'),
                 ('image_cache', 'remove_unused_original_minimum_age_seconds'),
                 ('image_cache', 'remove_unused_resized_minimum_age_seconds'),
                 ('image_cache', 'manager_interval')]:
        assert want in names


def test_cli_report_json_and_restore(standard_tree, capsys):
    conf = standard_tree.nova_conf()
    assert cli.main(['--config-file', conf, 'run', '--once']) == 0
    assert cli.main(['--config-file', conf, 'report', '--format',
                     'json']) == 0
    data = json.loads(capsys.readouterr().out)
    assert data['quarantine_bytes'] == 7 * 65536
    assert cli.main(['--config-file', conf, 'restore', 'swap_1024']) == 0
    assert 'swap_1024' in standard_tree.listing()
    assert cli.main(['--config-file', conf, 'restore', 'swap_1024']) == 1
    assert 'not in quarantine' in capsys.readouterr().err


def test_cli_bad_config_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / 'nova.conf'
    bad.write_text('[image_cache]\nmanager_interval = soon\n')
    assert cli.main(['--config-file', str(bad), 'report']) == 2
    assert 'manager_interval' in capsys.readouterr().err
