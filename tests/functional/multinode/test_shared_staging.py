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

"""Two glance-api nodes sharing one staging directory.

Some deployments mount one staging directory on every controller; the
import journal and the conversion slots then sit in shared directories
too (their defaults are next to staging). glance_ext supports it: every
journal entry and slot file names its node (``[glance_ext] host``,
distinct per node: ``local-glance up --nodes 2 --shared-staging`` gives
each node its own, as separate controllers have), and a node judges only
its own entries. What this proves, with two real glance-api nodes,
PostgreSQL and one shared staging directory:
- the per-node conversion limit stays per node in the shared slot
  directory: with ``max_concurrent = 1`` and node A's slot file held by
  the test, A's imports wait for A's slot while B converts both of its
  own and finishes; released, A converts; each node one at a time;
- node A killed in the middle of a conversion; node B then imports, and
  its plugins run the recovery over the shared journal: B leaves A's dead
  import alone (still ``importing``, entry and upload still there), since
  the process ids in it mean nothing to another host; A's restart
  reverts it (``uploading``, upload kept) and the retry through B ends
  ``active``.
"""

import fcntl
import os
import time

import pytest

from glance_ext.local_glance import service
from glance_ext.plugins.journal import Step
from glance_ext.testing import crash
from glance_ext.testing import images
from tests.functional.convert import helpers
from tests.functional.multinode import common


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("shared-images")
    return [images.pattern_image(str(d / ("p%d.qcow2" % i)), 12, "qcow2")
            for i in range(4)] + [
        images.pattern_image(str(d / "long.qcow2"), 48, "qcow2")]


@pytest.fixture(scope="module")
def cluster(module_glance_factory):
    return module_glance_factory(
        plugins=common.PLUGINS, db="postgresql", nodes=2,
        shared_staging=True, import_options=common.options(host_max=1))


def test_nodes_share_staging_and_journal(cluster):
    a, b = cluster.nodes
    assert a.staging_dir == b.staging_dir
    assert a.journal_dir == b.journal_dir


def test_per_node_limit_stays_per_node_in_a_shared_slot_dir(cluster,
                                                            sources):
    a, b = cluster.nodes
    slot_dir = os.path.join(os.path.dirname(a.staging_dir),
                            "glance-ext-convert-slots")
    os.makedirs(slot_dir, exist_ok=True)
    # Node A's one slot held here, as a conversion of A's would hold it.
    fd = os.open(os.path.join(slot_dir, "%s.slot-0" % service.node_host(0)),
                 os.O_RDWR | os.O_CREAT, 0o640)
    sampler = common.Sampler([a, b])
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            started = common.import_concurrently(
                [(a, sources[0]), (a, sources[1]), (b, sources[2]),
                 (b, sources[3])], name="shared")
            # B is not held up by A's slot in the shared directory: both of
            # its imports convert (one at a time) and finish, while A's
            # wait for A's own slot.
            for node, image_id in started[2:]:
                image = node.wait_import(image_id, timeout=300)
                assert image["status"] == "active", (image, node.log_tail())
                assert common.converted_on(node, image_id)
            for node, image_id in started[:2]:
                assert "waiting for a conversion slot (1 allowed on this " \
                    "host" in helpers.task_message(node, image_id)
                assert node.image(image_id)["status"] == "importing"
            assert sampler.peak_per_node == (0, 1), sampler.samples
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        for node, image_id in started[:2]:
            image = node.wait_import(image_id, timeout=300)
            assert image["status"] == "active", (image, node.log_tail())
            assert common.converted_on(node, image_id)
    finally:
        sampler.stop()
    # One at a time per node.
    assert sampler.peak_per_node == (1, 1), sampler.samples
    names = set(os.listdir(slot_dir))
    assert {"%s.slot-0" % service.node_host(0),
            "%s.slot-0" % service.node_host(1)} <= names, names


def test_b_never_reverts_a_import_a_does(cluster, sources):
    a, b = cluster.nodes
    (_, on_a), = common.import_concurrently([(a, sources[4])], name="a")
    crash.wait_for_step(a.journal_dir, on_a, Step.CONVERT)
    crash.kill_group(a.pid)
    crash.wait_gone_group(a.pid)
    # B imports now: its plugins run the recovery over the shared journal,
    # where A's entry names a process that is gone.
    (_, on_b), = common.import_concurrently([(b, sources[0])], name="b")
    image = b.wait_import(on_b)
    assert image["status"] == "active", (image, b.log_tail())
    entry = crash.entry_of(a.journal_dir, on_a)
    assert entry is not None and entry.owner.host == service.node_host(0)
    assert b.image(on_a)["status"] == "importing"
    assert on_a in b.staged_files()

    a = a.restart()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
            crash.entry_of(a.journal_dir, on_a) is not None
            or a.image(on_a)["status"] == "importing"):
        time.sleep(0.3)
    image = a.image(on_a)
    assert image["status"] == "uploading", (image, a.log_tail())
    assert "during conversion" in helpers.task_message(a, on_a)
    assert os.path.getsize(os.path.join(a.staging_dir, on_a)) == \
        os.path.getsize(sources[4])
    b.glance("image-import", on_a, "--import-method", "glance-direct")
    image = b.wait_import(on_a)
    assert image["status"] == "active", (image, a.log_tail())
