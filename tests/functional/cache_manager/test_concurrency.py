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

"""Concurrency and faults, with real processes and real qemu-img trees.

What these prove:
- nova's lock is the lock: while another process holds
  ``locks/nova-<name>`` the manager does not remove ``<name>`` (it skips
  it, or waits when told to) and removes it on a later pass;
- a disk created from a base while the manager waits for the lock keeps
  the base (the re-scan under the lock sees it);
- kill -9 at any moment of a pass loses no file, and the next pass
  finishes the job;
- two managers on the same storage never both act (tooz election), and
  running them at the same time removes each file exactly once;
- a stale host in nova's ``compute_nodes`` stops removal, named in the
  output, until forced.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from glance_ext.testing import cache_manager_trees as trees

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
MANAGER = [sys.executable, '-m', 'glance_ext.cmd.cache_manager']
STANDIN = [sys.executable, '-m',
           'tests.functional.cache_manager.nova_standins']
DAY = trees.DAY


def env():
    e = dict(os.environ)
    e['PYTHONPATH'] = ROOT + os.pathsep + e.get('PYTHONPATH', '')
    return e


# The manager's documented exit status when a safety check blocked
# removal (glance_ext.cmd.cache_manager).
BLOCKED = 3


def manager(conf, *args, check=True, expect=0, **kw):
    p = subprocess.run(MANAGER + ['--config-file', conf] + list(args),
                       cwd=ROOT, env=env(), capture_output=True, text=True,
                       timeout=120, **kw)
    if check and p.returncode != expect:
        raise AssertionError('manager exited %s, not %s\n%s'
                             % (p.returncode, expect, p.stderr))
    return p


def start(cmd, log=None):
    """Start a process; with ``log`` its output goes to that file (a pipe
    nobody reads would block a chatty manager)."""
    if log is not None:
        out = open(log, 'a')
        return subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=out,
                                stderr=out, text=True)
    return subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.PIPE,
                            text=True)


def hold_until_released(tree, name, disk=''):
    """nova's lock on ``name``, held until ``release``: the test, not the
    clock, decides when nova lets go."""
    holder = start(STANDIN + ['hold', tree.instances, name, 'release']
                   + ([disk] if disk else []))
    wait_line(holder, 'LOCKED')
    return holder


def release(holder):
    holder.stdin.write('\n')
    holder.stdin.flush()
    holder.wait(timeout=60)
    assert holder.returncode == 0, holder.stderr.read()


def manager_in_background(conf, log, *args):
    """A pass running while the test acts; its log (stderr) goes to
    ``log``, its JSON report to the returned process's stdout."""
    err = open(log, 'a')
    return subprocess.Popen(MANAGER + ['--config-file', conf] + list(args),
                            cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=err, text=True)


def wait_for_log(proc, log, *words):
    """Until the manager has logged a line with all ``words`` in it."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with open(log) as fh:
            if any(all(w in line for w in words) for line in fh):
                return
        assert proc.poll() is None, open(log).read()
        time.sleep(0.02)
    raise AssertionError('the manager never logged %r' % (words,))


def wait_line(proc, word):
    line = proc.stdout.readline()
    assert word in line, (line, proc.stderr.read() if proc.poll() else '')


def qdir(t):
    return os.path.join(t.instances, 'glance-ext-cache-manager',
                        'quarantine')


def quarantined(t):
    if not os.path.isdir(qdir(t)):
        return set()
    return {n for n in os.listdir(qdir(t))
            if not n.endswith(('.json', '.tmp'))}


@pytest.fixture
def tree(tmp_path):
    return trees.Tree(str(tmp_path))


def test_lock_held_by_nova_skips_then_removes(tree):
    victim = trees.sha1('locked')
    tree.base(victim, 2 * DAY)
    tree.base('swap_2048', 2 * DAY)
    conf = tree.nova_conf()
    holder = hold_until_released(tree, victim)
    out = manager(conf, 'run', '--once', '--format', 'json')
    report = json.loads(out.stdout)
    states = {f['name']: f['state'] for f in report['files']}
    assert states == {victim: 'locked', 'swap_2048': 'quarantined'}
    assert victim in tree.listing()
    release(holder)
    manager(conf, 'run', '--once')
    assert victim not in tree.listing() and victim in quarantined(tree)


def test_removal_waits_for_the_lock_when_told(tree):
    victim = trees.sha1('wait')
    tree.base(victim, 2 * DAY)
    conf = tree.nova_conf(extra='[cache_manager]\nlock_wait_seconds = 20\n')
    holder = hold_until_released(tree, victim)
    log = os.path.join(tree.root, 'manager.log')
    proc = manager_in_background(conf, log, 'run', '--once')
    # The pass has found the victim removable while nova holds its lock;
    # it must wait (lock_wait_seconds), not skip, and remove it once nova
    # lets go.
    wait_for_log(proc, log, 'Removable base files:', victim)
    time.sleep(1)
    assert proc.poll() is None, 'the pass did not wait for the lock'
    release(holder)
    proc.communicate(timeout=120)
    assert proc.returncode == 0, open(log).read()
    assert victim in quarantined(tree)


def test_disk_created_under_the_lock_during_the_pass_keeps_base(tree):
    victim = trees.sha1('racing')
    tree.base(victim, 2 * DAY)
    conf = tree.nova_conf(extra='[cache_manager]\nlock_wait_seconds = 20\n')
    new_disk = os.path.join(tree.instances, 'new-instance', 'disk')
    holder = hold_until_released(tree, victim, new_disk)
    log = os.path.join(tree.root, 'manager.log')
    # The pass scans (no disk yet: victim looks removable), then waits for
    # the lock; only then does the stand-in create the disk and release.
    proc = manager_in_background(conf, log, 'run', '--once', '--format',
                                 'json')
    wait_for_log(proc, log, 'Removable base files:', victim)
    release(holder)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, open(log).read()
    assert os.path.exists(new_disk)
    entry = {f['name']: f for f in json.loads(out)['files']}[victim]
    assert entry['state'] == 'in-use'
    assert entry['reason'] == 'became in use during the pass'
    assert victim in tree.listing()


def _invariant(tree, originals):
    """Every file is in exactly one place, whole."""
    base, quar = tree.listing(), quarantined(tree)
    for name, size in originals.items():
        places = (name in base) + (name in quar)
        assert places == 1, (name, places)
        where = tree.base_dir if name in base else qdir(tree)
        assert os.path.getsize(os.path.join(where, name)) == size


def test_kill_9_mid_pass_loses_nothing(tree):
    names = [trees.sha1('k%d' % i) for i in range(300)]
    for n in names:
        tree.base(n, 2 * DAY, size=4096)
    keep = trees.sha1('k-inuse')
    tree.base(keep, 2 * DAY, size=4096)
    tree.disk('inst', 'disk', keep)
    originals = {n: 4096 for n in names + [keep]}
    conf = tree.nova_conf()
    rng = random.Random(7)
    kills = 0
    for _ in range(5):
        proc = start(MANAGER + ['--config-file', conf, 'run', '--once'],
                     log=os.path.join(tree.root, 'manager.log'))
        # Kill once the pass has moved a random number of further files,
        # i.e. in the middle of the removals.
        target = len(quarantined(tree)) + rng.randint(1, 40)
        while proc.poll() is None and len(quarantined(tree)) < target:
            time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        _invariant(tree, originals)
        print('after kill: %d in cache, %d quarantined'
              % (len(tree.listing()), len(quarantined(tree))))
    assert kills >= 3
    manager(conf, 'run', '--once')
    _invariant(tree, originals)
    assert tree.listing() == {keep}
    assert quarantined(tree) == set(names)
    # Every quarantined file has its record.
    assert all(os.path.exists(os.path.join(qdir(tree), n + '.json'))
               for n in names)


def test_second_manager_does_not_act_while_one_leads(tree):
    victim = trees.sha1('elected')
    tree.base(victim, 2 * DAY)
    tree.base('swap_4096', 2 * DAY)
    manager(tree.nova_conf(), 'run', '--once')
    assert quarantined(tree) == {victim, 'swap_4096'}
    tree.base(victim, 2 * DAY)           # nova fetched it again
    # From now on quarantined files are due for purging at once.
    conf = tree.nova_conf(
        extra='[cache_manager]\nquarantine_grace_seconds = 0\n')
    state = os.path.join(tree.instances, 'glance-ext-cache-manager')
    os.makedirs(state, exist_ok=True)
    other = start(STANDIN + ['tooz', state, 'release'])
    wait_line(other, 'LEADER')
    out = manager(conf, 'run', '--once', '--format', 'json', expect=BLOCKED)
    report = json.loads(out.stdout)
    assert 'another cache manager is acting on this storage' in \
        report['blocked_reasons']
    assert victim in tree.listing()
    # Nor does it purge: the expired quarantined file is still there.
    assert report['purged'] == [] and 'swap_4096' in quarantined(tree)
    release(other)
    report = json.loads(manager(conf, 'run', '--once', '--format',
                                'json').stdout)
    assert report['quarantined'] == [victim]
    assert {m['name'] for m in report['purged']} >= {'swap_4096'}


def test_two_managers_at_once_remove_each_file_once(tree):
    names = [trees.sha1('two%d' % i) for i in range(150)]
    for n in names:
        tree.base(n, 2 * DAY, size=4096)
    conf = tree.nova_conf()
    procs = [start(MANAGER + ['--config-file', conf, 'run', '--once',
                              '--format', 'json']) for _ in range(2)]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        report = json.loads(out)
        # The one that finds the other acting reports only, and says so.
        if report['blocked_reasons']:
            assert report['blocked_reasons'] == [
                'another cache manager is acting on this storage'], err
            assert p.returncode == BLOCKED, err
        else:
            assert p.returncode == 0, err
        reports.append(report)
    moved = [set(r['quarantined']) for r in reports]
    assert not (moved[0] & moved[1])
    assert tree.listing() == set() and quarantined(tree) == set(names)


def test_stale_host_named_and_blocks_until_forced(tree):
    victim = trees.sha1('stale')
    tree.base(victim, 2 * DAY)
    tree.compute_nodes({'testhost': 5, 'compute-7': 2 * DAY})
    conf = tree.nova_conf()
    out = manager(conf, 'run', '--once', expect=BLOCKED)
    assert 'compute-7' in out.stderr and 'Not removing anything' in out.stderr
    assert victim in tree.listing()
    manager(conf, 'run', '--once', '--force')
    assert victim in quarantined(tree)


def test_daemon_passes_metrics_and_sigterm(tree):
    import socket
    import urllib.request
    victim = trees.sha1('daemon')
    tree.base(victim, 2 * DAY)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    textfile = os.path.join(tree.root, 'cm.prom')
    conf = tree.nova_conf(
        extra='[cache_manager]\nmetrics_port = %d\nmetrics_textfile = %s\n'
              % (port, textfile), manager_interval=1)
    proc = start(MANAGER + ['--config-file', conf, 'run'],
                 log=os.path.join(tree.root, 'daemon.log'))
    try:
        deadline = time.time() + 60
        body = ''
        while time.time() < deadline:
            try:
                body = urllib.request.urlopen(
                    'http://127.0.0.1:%d/metrics' % port, timeout=2
                ).read().decode()
                if 'glance_ext_cache_manager_reclaimed_bytes_total 65536.0' in body:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert 'glance_ext_cache_manager_last_pass_timestamp_seconds' in body
        assert victim in quarantined(tree)
        with open(textfile) as f:
            assert 'glance_ext_cache_manager_files' in f.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
