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

"""Conversion-slot holders run as real processes ("nodes") by the tests.

``rounds URL CAP NODE SLOTDIR SECONDS ROUNDS LOG``: ROUNDS times, take a
host slot (in SLOTDIR, as node NODE) and a cluster slot of CAP on URL,
exactly as the convert engine does (``slots.acquire_all``), hold it
SECONDS, and append ``<start> <end>`` (CLOCK_MONOTONIC, shared by every
process of the machine) to LOG while held.

``hold URL CAP``: take a cluster slot, print ``HELD <index>`` and sleep
until killed.
"""

import os
import sys
import time

from glance_ext.conversion import cluster
from glance_ext.conversion import slots


def rounds(url: str, cap: int, node: str, slot_dir: str, seconds: float,
           count: int, log: str) -> None:
    for _ in range(count):
        host = slots.HostSlots(slot_dir, 2, node=node)
        held = slots.acquire_all(host, cluster.ClusterSlots(url, cap),
                                 timeout=300)
        with held:
            start = time.monotonic()
            time.sleep(seconds)
            end = time.monotonic()
            with open(log, "a") as fh:
                fh.write("%f %f %d %d\n" % (start, end, os.getpid(),
                                            held.cluster.index))


def hold(url: str, cap: int) -> None:
    slot = cluster.ClusterSlots(url, cap).try_acquire()
    print("HELD %s" % (slot.index if slot else "none"), flush=True)
    time.sleep(600)


if __name__ == "__main__":
    if sys.argv[1] == "rounds":
        rounds(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5],
               float(sys.argv[6]), int(sys.argv[7]), sys.argv[8])
    elif sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]))
