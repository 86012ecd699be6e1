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

"""The cache manager's election and quarantine on real etcd and redis.

Three managers (three compute hosts' worth: their own ``[DEFAULT] host``,
one shared instances tree) elect through tooz on a real etcd 3.4 and a
real redis 7.0 started by the test (no mock of either). What this proves,
on each backend:
- exactly one manager acts per pass: while the elected one is in the
  middle of its pass (held there by nova's lock on one base, taken by a
  stand-in exactly as nova takes it) the other two only report, saying
  another manager acts, and exit 3; each file is removed once;
- kill -9 of the acting manager in the middle of its removals: every
  file is in exactly one place (cache or quarantine, whole), the next
  passes report only until the dead manager's lock expires on the
  backend (``?lock_timeout=3``), then another manager acts and finishes:
  every unused base is quarantined with its record, no in-use base ever
  left the cache, no record without its file;
- the backend stopped: a pass removes nothing, exits 3 and names the
  backend; once it is back, passes act again.
"""

import json
import os
import random
import signal
import subprocess
import time

import pytest

from glance_ext.testing import cache_manager_trees as trees
from tests.functional.cache_manager import test_concurrency as base

DAY = trees.DAY
BACKENDS = ["etcd", "redis"]
HOSTS = ["cm-a", "cm-b", "cm-c"]
ANOTHER = 'another cache manager is acting on this storage'


@pytest.fixture
def server(request, etcd_server, redis_server):
    return {"etcd": etcd_server, "redis": redis_server}[request.param]


@pytest.fixture
def tree(tmp_path):
    return trees.Tree(str(tmp_path))


def _confs(tree, url, extra=""):
    """One nova.conf per manager host, all on ``url``."""
    text = open(tree.nova_conf(
        extra="[cache_manager]\ncoordination_url = %s\n%s" % (url, extra))
    ).read()
    confs = {}
    for host in HOSTS:
        path = os.path.join(tree.root, "nova-%s.conf" % host)
        with open(path, "w") as fh:
            fh.write(text.replace("host = testhost", "host = %s" % host))
        confs[host] = path
    return confs


class _Manager(object):
    """One ``run --once --format json`` pass; its report and its log go
    to files (a pass over hundreds of files logs more than a pipe nobody
    reads can hold)."""

    def __init__(self, conf, log):
        self.log = log
        self.out = open(log + '.json', 'w')
        self.err = open(log + '.stderr', 'w')
        self.proc = subprocess.Popen(
            base.MANAGER + ['--config-file', conf, '--log-file', log, 'run',
                            '--once', '--format', 'json'],
            cwd=base.ROOT, env=base.env(), stdout=self.out, stderr=self.err,
            stdin=subprocess.DEVNULL)

    def poll(self):
        return self.proc.poll()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close()

    def _close(self):
        self.out.close()
        self.err.close()

    def finish(self):
        """(exit status, report, stderr)"""
        self.proc.wait(timeout=300)
        self._close()
        with open(self.log + '.stderr') as fh:
            err = fh.read()
        with open(self.log + '.json') as fh:
            return self.proc.returncode, json.load(fh), err


def _start(conf, log):
    return _Manager(conf, log)


def _elected(log):
    try:
        with open(log) as fh:
            return "Elected on" in fh.read()
    except FileNotFoundError:
        return False


def _finish(manager):
    return manager.finish()


def _in_use(tree, count):
    names = [trees.sha1('in-use-%d' % i) for i in range(count)]
    for i, name in enumerate(names):
        tree.base(name, 2 * DAY, size=4096)
        tree.disk('inst-%d' % i, 'disk', name)
    return names


def _records_consistent(tree):
    q = base.qdir(tree)
    names = os.listdir(q) if os.path.isdir(q) else []
    files = {n for n in names if not n.endswith(('.json', '.tmp'))}
    records = {n[:-5] for n in names if n.endswith('.json')}
    return files, records


@pytest.mark.parametrize("server", BACKENDS, indirect=True)
def test_exactly_one_of_three_acts_per_pass(server, tree):
    keep = _in_use(tree, 3)
    confs = _confs(tree, server.url + "?lock_timeout=5",
                   "lock_wait_seconds = 600\n")
    acted_by = []
    for round_ in range(3):
        names = [trees.sha1('r%d-%d' % (round_, i)) for i in range(20)]
        for name in names:
            tree.base(name, 2 * DAY, size=4096)
        victim = names[0]
        # nova holds its lock on one removable base: the elected manager
        # waits for it in the middle of its pass.
        holder = base.start(base.STANDIN + ['hold', tree.instances, victim,
                                            '300'])
        base.wait_line(holder, 'LOCKED')
        logs = {h: os.path.join(tree.root, 'r%d-%s.log' % (round_, h))
                for h in HOSTS}
        procs = {h: _start(confs[h], logs[h]) for h in HOSTS}
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and sum(
                    p.poll() is not None for p in procs.values()) < 2:
                time.sleep(0.1)
            done = {h: _finish(p) for h, p in procs.items()
                    if p.poll() is not None}
            assert len(done) == 2, "two managers should have only reported"
            for rc, report, err in done.values():
                assert rc == base.BLOCKED, err
                assert report['blocked_reasons'] == [ANOTHER], err
                assert report['quarantined'] == []
            (leader,) = [h for h in HOSTS if h not in done]
            assert _elected(logs[leader])
            assert not any(_elected(logs[h]) for h in done)
        finally:
            holder.kill()
            holder.wait(timeout=30)
            holder.stdout.close()
            holder.stderr.close()
        rc, report, err = _finish(procs[leader])
        assert rc == 0 and report['blocked_reasons'] == [], err
        assert sorted(report['quarantined']) == sorted(names)
        acted_by.append(leader)
    assert tree.listing() == set(keep)
    files, records = _records_consistent(tree)
    assert files == records and not files & set(keep)
    print("acting managers per pass:", acted_by)


@pytest.mark.parametrize("server", BACKENDS, indirect=True)
def test_kill_9_of_the_acting_manager_mid_pass(server, tree):
    keep = _in_use(tree, 5)
    removable = [trees.sha1('k%d' % i) for i in range(300)]
    for name in removable:
        tree.base(name, 2 * DAY, size=4096)
    # The youngest removable base comes last, in the second batch of
    # removals (200 per batch): nova's lock on it keeps the acting manager
    # in the middle of its pass at the latest there.
    last = trees.sha1('k-last')
    tree.base(last, 1.5 * DAY, size=4096)
    everything = set(keep) | set(removable) | {last}
    sizes = {n: 4096 for n in everything}
    confs = _confs(tree, server.url + "?lock_timeout=3",
                   "lock_wait_seconds = 600\n")
    holder = base.start(base.STANDIN + ['hold', tree.instances, last,
                                        '300'])
    base.wait_line(holder, 'LOCKED')
    logs = {h: os.path.join(tree.root, 'kill-%s.log' % h) for h in HOSTS}
    procs = {h: _start(confs[h], logs[h]) for h in HOSTS}
    try:
        deadline = time.monotonic() + 120
        leader = None
        while leader is None and time.monotonic() < deadline:
            running = [h for h, p in procs.items()
                       if p.poll() is None and _elected(logs[h])]
            leader = running[0] if running else None
            time.sleep(0.01)
        assert leader is not None, "no manager was elected"
        # Kill it after a random number of removals.
        target = random.Random(17).randint(1, 199)
        while procs[leader].poll() is None and \
                len(base.quarantined(tree)) < target:
            time.sleep(0.002)
        procs[leader].kill()
        killed_at = len(base.quarantined(tree))
        assert 0 < killed_at < len(removable), killed_at
        for h, p in procs.items():
            if h != leader:
                rc, report, err = _finish(p)
                assert rc == base.BLOCKED and \
                    report['blocked_reasons'] == [ANOTHER], err
        base._invariant(tree, sizes)
        assert set(keep) <= tree.listing()
    finally:
        holder.kill()
        holder.wait(timeout=30)
        holder.stdout.close()
        holder.stderr.close()
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    survivors = [h for h in HOSTS if h != leader]
    # Passes of the others: report-only while the dead manager's lock is
    # still on the backend, then one of them acts.
    passes = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = {h: _start(confs[h], logs[h] + '.next') for h in survivors}
        results = {h: _finish(p) for h, p in runs.items()}
        acting = [h for h, (rc, report, _) in results.items()
                  if not report['blocked_reasons']]
        passes.append(acting)
        assert len(acting) <= 1 or not (
            set(results[acting[0]][1]['quarantined']) &
            set(results[acting[1]][1]['quarantined']))
        base._invariant(tree, sizes)
        if acting:
            break
        time.sleep(0.5)
    assert passes[-1], "no other manager acted within 120 s: %s" % passes
    assert tree.listing() == set(keep)
    assert base.quarantined(tree) == set(removable) | {last}
    files, records = _records_consistent(tree)
    assert files == records
    print("killed %s after %d removals; passes after: %s"
          % (leader, killed_at, passes))


@pytest.mark.parametrize("kind", BACKENDS)
def test_backend_stopped_blocks_removal_and_says_why(kind, server_factory,
                                                     tree):
    server = server_factory(kind)
    victim = trees.sha1('while-down')
    tree.base(victim, 2 * DAY)
    keep = _in_use(tree, 1)
    conf = _confs(tree, server.url)['cm-a']
    server.stop()
    out = base.manager(conf, 'run', '--once', '--format', 'json',
                       expect=base.BLOCKED)
    (reason,) = json.loads(out.stdout)['blocked_reasons']
    assert 'the election cannot be held' in reason and server.url in reason
    assert victim in tree.listing()
    server.start()
    report = json.loads(base.manager(conf, 'run', '--once', '--format',
                                     'json').stdout)
    assert report['quarantined'] == [victim]
    assert tree.listing() == set(keep)
