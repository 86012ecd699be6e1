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

"""Benchmark: what the cluster-wide conversion cap costs per conversion.

Every conversion takes its limits once, before qemu-img starts, and gives
them back once, after it ends: that acquire + release is the whole
overhead of the cap (the keep-alive thread runs beside the conversion).
This measures it exactly as the engine does it
(``slots.acquire_all(HostSlots, ClusterSlots)`` then ``Held.release()``:
a new tooz session per conversion, connect, one lock, release,
disconnect), side by side in one run against the peer, the per-host file
slot alone (``acquire_all(HostSlots, None)``, what every conversion pays
without ``coordination_url``):

* ``host``: the per-host flock slot only (the peer);
* ``etcd``: host slot + a cluster slot on a real etcd (Debian's
  etcd-server 3.4, through tooz's etcd3gw driver);
* ``redis``: host slot + a cluster slot on a real redis-server (7.0,
  tooz's redis driver).

Each with the cap's first lock free, and (``busy``) with all but the last
of ``--cap`` cluster locks held by other sessions, so the acquire walks
every lock (one round trip each) before it gets one: the most a
conversion pays without waiting. Rounds alternate the order of the
variants; medians and 90th percentiles are printed, and the overhead is
the median minus the peer's. The servers are started on loopback ports
of their own and stopped at the end (``glance_ext.testing.servers``).

Usage: python bench/cluster_cap_bench.py [--rounds 200] [--cap 4]
Writes JSON to bench/out/cluster_cap_bench.json.
"""

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

from glance_ext.conversion import cluster
from glance_ext.conversion import slots
from glance_ext.testing import servers

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out",
                   "cluster_cap_bench.json")


def one_conversion(slot_dir: str, url: Optional[str], cap: int) -> float:
    """Seconds for one conversion's acquire + release, as the engine does
    it (``ConversionEngine._limits``, then leaving its ``with``)."""
    start = time.perf_counter()
    host = slots.HostSlots(slot_dir, 2, node="bench")
    capped = cluster.ClusterSlots(url, cap, member="bench-%d" % os.getpid()) \
        if url else None
    held = slots.acquire_all(host, capped, timeout=30)
    if url and held.cluster is None:
        raise RuntimeError("no cluster slot was taken on %s" % url)
    held.release()
    return time.perf_counter() - start


def hold_all_but_last(url: str, cap: int) -> List[cluster.ClusterSlot]:
    """Other sessions holding locks 0 .. cap-2 of the cap."""
    held = []
    for index in range(cap - 1):
        got = cluster.ClusterSlots(url, index + 1,
                                   member="bench-holder-%d" % index)
        slot = got.try_acquire()
        if slot is None or slot.index != index:
            raise RuntimeError("could not hold lock %d on %s" % (index, url))
        held.append(slot)
    return held


def summary(samples: List[float]) -> Dict[str, float]:
    ordered = sorted(samples)
    return {"median_ms": statistics.median(ordered) * 1000,
            "p90_ms": ordered[int(len(ordered) * 0.9) - 1] * 1000,
            "min_ms": ordered[0] * 1000, "n": len(ordered)}


def run_rounds(variants: Dict[str, Callable[[], float]],
               rounds: int) -> Dict[str, List[float]]:
    names = list(variants)
    for name in names:             # warm up: imports, first connections
        for _ in range(3):
            variants[name]()
    samples: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            samples[name].append(variants[name]())
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--cap", type=int, default=4,
                        help="cluster_max_concurrent of the busy rows")
    args = parser.parse_args()
    # The holders' keep-alive threads log nothing unless something fails.
    logging.basicConfig(level=logging.WARNING)
    for binary in (servers.ETCD, servers.REDIS):
        why = servers.missing(binary)
        if why:
            print(why, file=sys.stderr)
            return 2
    work = tempfile.mkdtemp(prefix="glance-ext-cluster-bench-")
    etcd = servers.EtcdServer(os.path.join(work, "etcd"))
    redis = servers.RedisServer(os.path.join(work, "redis"))
    holders: List[cluster.ClusterSlot] = []
    try:
        etcd.start()
        redis.start()
        slot_dir = os.path.join(work, "slots")
        free = {
            "host": lambda: one_conversion(slot_dir, None, args.cap),
            "etcd": lambda: one_conversion(slot_dir, etcd.url, args.cap),
            "redis": lambda: one_conversion(slot_dir, redis.url, args.cap),
        }
        results = {"free": run_rounds(free, args.rounds)}
        holders = hold_all_but_last(etcd.url, args.cap) + \
            hold_all_but_last(redis.url, args.cap)
        results["busy"] = run_rounds(free, args.rounds)
    finally:
        for slot in holders:
            slot.release()
        etcd.close()
        redis.close()
        shutil.rmtree(work, ignore_errors=True)
    report = {"rounds": args.rounds, "cap": args.cap,
              "python": platform.python_version(),
              "cpus": os.cpu_count(), "rows": {}}
    print("| cluster locks before a free one | variant | median | p90 | "
          "overhead vs host slot (median) |")
    print("|---|---|---|---|---|")
    for case, label in (("free", "0"), ("busy", str(args.cap - 1))):
        stats = {name: summary(s) for name, s in results[case].items()}
        report["rows"][case] = stats
        peer = stats["host"]["median_ms"]
        for name in ("host", "etcd", "redis"):
            st = stats[name]
            extra = "(peer)" if name == "host" else "+%.2f ms (%.1fx)" % (
                st["median_ms"] - peer, st["median_ms"] / peer)
            print("| %s | %s | %.2f ms | %.2f ms | %s |"
                  % (label, name if name != "host" else "host slot only",
                     st["median_ms"], st["p90_ms"], extra))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(report, fh, indent=2, sort_keys=True)
    print("JSON: %s" % OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
