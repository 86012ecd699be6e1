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

"""What the two-node tests share: options, concurrent imports through
the real glance CLI, and a sampler of the conversions running on
each node (from /proc)."""

import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

from glance_ext.conversion import cluster
from glance_ext.local_glance import client
from glance_ext.testing import qemu_procs
from tests.functional.convert import helpers

PLUGINS = helpers.OUR_PLUGINS
# The lease of a cluster slot in these tests. A lease the keep-alive thread
# fails to refresh in time (a starved thread on a loaded 2-core machine)
# lets another conversion in, as the backend documents: right for a dead
# node, a wrong count here. 20 s is far beyond any stall seen, and no test
# of the cap waits for a lease to run out.
LEASE = "?lock_timeout=20"


def options(coordination_url: Optional[str] = None, cluster_cap: int = 2,
            host_max: int = 2, rate_mb: str = "4") -> Dict[str, str]:
    """Import options of every node: each node's own slots (no lock_dir:
    next to its staging), conversions throttled so they overlap."""
    opts = {"glance_ext_convert.progress_interval_seconds": "0.3",
            "glance_ext_convert.free_space_reserve_mb": "16",
            "glance_ext_convert.max_concurrent": str(host_max),
            "glance_ext_convert.rate_limit_mb": rate_mb}
    if coordination_url:
        opts["glance_ext_convert.coordination_url"] = coordination_url
        opts["glance_ext_convert.cluster_max_concurrent"] = str(cluster_cap)
    return opts


def _node_of(pid: int, masters: Dict[int, int]) -> Optional[int]:
    """The index of the node whose gunicorn master is an ancestor of
    ``pid`` (qemu-img runs in a session of its own, so its process group
    does not tell)."""
    for _ in range(8):
        if pid in masters:
            return masters[pid]
        parent = qemu_procs.parent_pid(pid)
        if not parent or parent == pid:
            return None
        pid = parent
    return None


class Sampler(object):
    """Samples, every 50 ms, how many conversions (``qemu-img convert``, or
    ``nbdcopy`` for a raw output streamed into the store upload) of this
    local Glance run on each node (by process ancestry), until stopped."""

    def __init__(self, nodes: Sequence[client.LocalGlance]) -> None:
        self.marker = nodes[0].state_dir
        self.masters = {n.pid: i for i, n in enumerate(nodes)}
        self.samples: List[Tuple[int, ...]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            counts = [0] * len(self.masters)
            for pid in qemu_procs.converter_pids(self.marker):
                node = _node_of(pid, self.masters)
                if node is not None:
                    counts[node] += 1
            self.samples.append(tuple(counts))
            time.sleep(0.05)

    def stop(self) -> "Sampler":
        self._stop.set()
        self._thread.join()
        return self

    @property
    def peak(self) -> int:
        """Most converts at one instant across the nodes."""
        return max((sum(s) for s in self.samples), default=0)

    @property
    def peak_per_node(self) -> Tuple[int, ...]:
        """Most converts at one instant on each node."""
        return tuple(max((s[i] for s in self.samples), default=0)
                     for i in range(len(self.masters)))

    @property
    def total(self) -> int:
        """Converts seen so far, summed over the samples (0: none ran)."""
        return sum(sum(s) for s in self.samples)


def import_concurrently(jobs: Sequence[Tuple[client.LocalGlance, str]],
                        name: str = "mn") -> List[Tuple[client.LocalGlance,
                                                        str]]:
    """``image-create-via-import`` of each (node, path) at once; returns
    (node, image id) in order."""
    results: List[Optional[Tuple[client.LocalGlance, str]]] = \
        [None] * len(jobs)
    errors: List[BaseException] = []

    def one(index: int) -> None:
        node, path = jobs[index]
        try:
            results[index] = (node, node.import_file(
                path, "qcow2", name="%s-%d" % (name, index)))
        except BaseException as exc:   # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,))
               for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return [r for r in results if r is not None]


def hold_cluster_slots(url: str, cap: int) -> List[cluster.ClusterSlot]:
    """Take every one of the ``cap`` cluster-wide slots on ``url`` from
    this process (as conversions of another node would hold them), with
    the code the plugins use; ``release`` each to give them back."""
    held = []
    for index in range(cap):
        slot = cluster.ClusterSlots(url, cap,
                                    member="test-holder").try_acquire()
        assert slot is not None and slot.index == index, (slot, index)
        held.append(slot)
    return held


def wait_messages(started: Sequence[Tuple[client.LocalGlance, str]],
                  texts: Dict[str, int], timeout: float = 180) -> None:
    """Wait until, for each ``text: count`` of ``texts``, exactly
    ``count`` of the imports' task messages say ``text``."""
    deadline = time.monotonic() + timeout
    counts: Dict[str, int] = {}
    while time.monotonic() < deadline:
        messages = [helpers.task_message(n, i) for n, i in started]
        counts = {t: sum(t in m for m in messages) for t in texts}
        if counts == texts:
            return
        time.sleep(0.3)
    raise AssertionError("task messages never said %r; last: %r"
                         % (texts, messages))


def converted_on(node: client.LocalGlance, image_id: str) -> bool:
    """Whether ``node``'s glance-api ran our conversion of ``image_id``
    (its log says so: converted to a file, or streamed into the store
    upload)."""
    with open(node.log_path, errors="replace") as fh:
        log = fh.read()
    return ("Image %s converted" % image_id) in log or \
        ("Image %s: streaming" % image_id) in log


def wait_task_message(node: client.LocalGlance, image_id: str, text: str,
                      timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    message = ""
    while time.monotonic() < deadline:
        message = helpers.task_message(node, image_id)
        if text in message:
            return message
        time.sleep(0.1)
    raise AssertionError("task of %s never said %r; last: %r"
                         % (image_id, text, message))
