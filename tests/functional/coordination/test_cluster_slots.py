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

"""The cluster-wide conversion cap on a real etcd and a real redis.

What these prove, for each backend (Debian's etcd 3.4 and redis 7.0,
started by the test on loopback ports; no mock):
- six processes standing for three nodes (each with its own host slots)
  never hold more than ``cluster_max_concurrent`` = 2 slots at once, and
  do hold 2 at once (a cap, not a global lock);
- a slot is kept while its holder lives, also past the backend's lock
  timeout (our keep-alive refreshes it), and a holder killed with
  SIGKILL frees it once the lease runs out;
- the backend stopped while one process holds a slot and another waits:
  the waiter gets ``CoordinationUnavailable`` naming the backend (the
  default ``coordination_unreachable = fail``) or goes on under the host
  limit (``host_limits``), the holder's release returns, and once the
  backend is back a new conversion gets a slot again.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from glance_ext import exceptions
from glance_ext.conversion import cluster
from glance_ext.conversion import slots

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
HOLDERS = [sys.executable, "-m", "tests.functional.coordination.holders"]
BACKENDS = ["etcd", "redis"]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def server(request, etcd_server, redis_server):
    return {"etcd": etcd_server, "redis": redis_server}[request.param]


def _peak(intervals):
    """Most intervals that overlap at one instant."""
    events = sorted([(s, 1) for s, _ in intervals] +
                    [(e, -1) for _, e in intervals])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize("server", BACKENDS, indirect=True)
def test_six_processes_of_three_nodes_never_exceed_the_cap(server, tmp_path):
    log = str(tmp_path / "holds.log")
    url = server.url + "?lock_timeout=10"
    procs = []
    for node in range(3):
        for _ in range(2):
            procs.append(subprocess.Popen(
                HOLDERS + ["rounds", url, "2", "node-%d" % node,
                           str(tmp_path / ("slots-%d" % node)), "0.3", "3",
                           log], cwd=ROOT, env=_env()))
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    with open(log) as fh:
        rows = [line.split() for line in fh]
    assert len(rows) == 18
    intervals = [(float(r[0]), float(r[1])) for r in rows]
    assert _peak(intervals) == 2, intervals
    assert {r[3] for r in rows} == {"0", "1"}


@pytest.mark.parametrize("server", BACKENDS, indirect=True)
def test_slot_kept_while_alive_freed_when_killed(server):
    url = server.url + "?lock_timeout=2"
    holder = subprocess.Popen(HOLDERS + ["hold", url, "1"], cwd=ROOT,
                              env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().split() == ["HELD", "0"]
        other = cluster.ClusterSlots(url, 1)
        # Three lock timeouts later the holder's keep-alive still has it.
        time.sleep(6)
        assert other.try_acquire() is None
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        deadline = time.monotonic() + 60
        slot = None
        while slot is None and time.monotonic() < deadline:
            slot = other.try_acquire()
            time.sleep(0.2)
        assert slot is not None, "the dead holder's slot was never freed"
        slot.release()
    finally:
        holder.kill()
        holder.wait(timeout=30)
        holder.stdout.close()


@pytest.mark.parametrize("kind", BACKENDS)
def test_backend_stopped_mid_run(kind, server_factory, tmp_path):
    server = server_factory(kind)
    url = server.url + "?lock_timeout=5"
    holder = slots.acquire_all(
        slots.HostSlots(str(tmp_path / "a"), 2, node="a"),
        cluster.ClusterSlots(url, 1), timeout=30)
    outcome = {}

    def wait(policy, key):
        try:
            outcome[key] = slots.acquire_all(
                slots.HostSlots(str(tmp_path / key), 2, node=key),
                cluster.ClusterSlots(url, 1), timeout=120,
                unreachable=policy)
        except Exception as exc:
            outcome[key] = exc

    waiters = [threading.Thread(target=wait, args=("fail", "b")),
               threading.Thread(target=wait, args=("host_limits", "c"))]
    for t in waiters:
        t.start()
    time.sleep(2)                        # both are waiting for the slot
    assert not outcome
    server.kill()
    for t in waiters:
        t.join(timeout=180)
        assert not t.is_alive()
    failed = outcome["b"]
    assert isinstance(failed, exceptions.CoordinationUnavailable), failed
    assert server.url in str(failed) and "not of any image" in str(failed)
    degraded = outcome["c"]
    assert isinstance(degraded, slots.Held), degraded
    assert degraded.cluster is None and server.url in degraded.degraded
    degraded.release()
    # The holder's release returns although the backend is gone.
    holder.release()
    server.start()
    again = slots.acquire_all(
        slots.HostSlots(str(tmp_path / "d"), 2, node="d"),
        cluster.ClusterSlots(url, 1), timeout=60)
    assert again.cluster is not None
    again.release()
