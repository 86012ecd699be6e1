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

"""Two glance-api nodes, as the controllers of an HA cloud run them.

``glance-ext local-glance up --nodes 2``: two real glance-api processes
(gunicorn), one PostgreSQL database, one file store, a staging directory,
import journal and conversion slots per node, ``worker_self_reference_url``
per node; the plugins validate and convert; a cluster-wide cap of 2
conversions through a real etcd 3.4 started by the test, per node at most
2 (so without the cluster cap 4 could run). What this proves:
- staged on node A, imported through node B: Glance proxies the import to
  A, our plugins run on A (its log; B's shows the proxying), the image is
  ``active`` with the converted format and our properties;
- six concurrent imports spread over both nodes, the cap held full by
  the test at first (as another node's conversions would hold it): every
  import that holds a host slot, on either node, says it waits for the
  cluster and nothing converts, although each node has free slots; once
  released, never more than 2 conversions at once across the
  nodes (the process table, sampled every 50 ms), 2 at some point, each
  node converting its own, all ``active``;
- node A killed (its whole process group) in the middle of a conversion:
  node B keeps serving and its imports finish ``active``; B never touches
  A's import (still ``importing``, its journal entry still there, while A
  is down); A's restart reverts A's import only (``uploading``, the
  upload kept), while an import running on B through A's restart ends
  ``active``; ``glance image-import`` then finishes A's image.
"""

import os
import time

import pytest

from glance_ext.local_glance import client
from glance_ext.local_glance import service
from glance_ext.plugins import recovery
from glance_ext.plugins.journal import Step
from glance_ext.testing import crash
from glance_ext.testing import images
from glance_ext.testing import qemu_procs
from tests.functional.convert import helpers
from tests.functional.multinode import common


WAITING = "waiting for a conversion slot (2 allowed in the cluster"
HOST_WAITING = "waiting for a conversion slot (2 allowed on this host"


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("mn-images")
    return [images.pattern_image(str(d / ("s%d.qcow2" % i)), 16, "qcow2")
            for i in range(6)] + [
        images.pattern_image(str(d / "long.qcow2"), 48, "qcow2")]


@pytest.fixture(scope="module")
def cluster(module_glance_factory, etcd_server):
    glance = module_glance_factory(
        plugins=common.PLUGINS, db="postgresql", nodes=2,
        import_options=common.options(
            etcd_server.url + common.LEASE, cluster_cap=2, host_max=2))
    return glance


def test_up_lists_two_nodes(cluster):
    status = cluster.status()
    nodes = status["nodes"]
    assert status["running"] and len(nodes) == 2
    assert nodes[0]["url"] != nodes[1]["url"]
    assert nodes[0]["staging_dir"] != nodes[1]["staging_dir"]
    assert all(n["healthy"] for n in nodes)
    a, b = cluster.nodes
    assert a.url == nodes[0]["url"] and b.url == nodes[1]["url"]


def test_staged_on_a_imported_through_b_runs_on_a(cluster, sources):
    a, b = cluster.nodes
    image_id = client.parse_table(a.glance(
        "image-create", "--disk-format", "qcow2", "--container-format",
        "bare", "--name", "staged-on-a").stdout)["id"]
    with open(sources[0], "rb") as data:
        a.glance("image-stage", image_id, stdin=data)
    assert image_id in a.staged_files()
    b.glance("image-import", image_id, "--import-method", "glance-direct")
    image = b.wait_import(image_id)
    assert image["status"] == "active", (image, a.log_tail())
    assert image["disk_format"] == "raw"
    assert image["glance_ext_convert_source_format"] == "qcow2"
    assert image["glance_ext_validate_detected_format"] == "qcow2"
    assert common.converted_on(a, image_id)
    assert not common.converted_on(b, image_id)
    with open(b.log_path, errors="replace") as fh:
        assert "Proxying POST request to host %s" % a.url in fh.read()
    assert a.staged_file_gone(image_id)


def test_six_imports_over_two_nodes_respect_the_cluster_cap(
        cluster, sources, etcd_server):
    a, b = cluster.nodes
    # The cluster starts full (both slots held here, as another node's
    # conversions would hold them): the imports of either node that get a
    # host slot must wait for the cluster although their node converts
    # nothing.
    held = common.hold_cluster_slots(etcd_server.url + common.LEASE, 2)
    sampler = common.Sampler([a, b])
    try:
        try:
            started = common.import_concurrently(
                [(a if i % 2 == 0 else b, sources[i]) for i in range(6)],
                name="capped")
            # Per node: two imports hold their host slots and wait for
            # the cluster, the third waits for its host.
            common.wait_messages(started, {WAITING: 4, HOST_WAITING: 2})
            assert sampler.total == 0, sampler.samples
        finally:
            for slot in held:
                slot.release()
        for node, image_id in started:
            image = node.wait_import(image_id, timeout=300)
            assert image["status"] == "active", (image, node.log_tail())
    finally:
        sampler.stop()
    for node, image_id in started:
        image = node.image(image_id)
        assert image["disk_format"] == "raw"
        assert common.converted_on(node, image_id)
    # Never more than the cap across the nodes, and the cap reached (the
    # released slots were taken at once by two of the six waiting); each
    # node converted its own.
    assert sampler.peak == 2, sampler.samples
    assert all(sampler.peak_per_node), sampler.peak_per_node


def test_node_a_killed_mid_conversion(cluster, sources):
    a, b = cluster.nodes
    (_, on_a), = common.import_concurrently([(a, sources[6])], name="on-a")
    # B's imports: one in flight while A dies, then one while A restarts.
    (_, on_b), = common.import_concurrently([(b, sources[1])], name="on-b")
    # A single-store raw import is streamed into the store upload
    # (docs/convert.md): its conversion runs in the journal's upload step.
    crash.wait_for_step(a.journal_dir, on_a, Step.UPLOAD)
    _wait_converting(on_a)
    crash.kill_group(a.pid)
    crash.wait_gone_group(a.pid)
    entry = crash.entry_of(a.journal_dir, on_a)
    assert entry.step is Step.UPLOAD and Step.UPLOAD not in entry.done, \
        entry
    assert entry.owner.host == service.node_host(0)

    # B keeps serving; its own imports finish.
    assert b.image(on_b)["status"] in ("importing", "active")
    image = b.wait_import(on_b)
    assert image["status"] == "active", (image, b.log_tail())
    (_, late_b), = common.import_concurrently([(b, sources[2])],
                                              name="late-b")
    # Nobody touched A's import while A was down.
    assert b.image(on_a)["status"] == "importing"
    assert crash.entry_of(a.journal_dir, on_a) is not None
    assert on_a in a.staged_files()

    a = a.restart()
    recovered = _settled(a, on_a)
    assert recovered["status"] == "uploading", (recovered, a.log_tail())
    message = helpers.task_message(a, on_a)
    assert "interrupted because glance-api stopped" in message
    assert recovery.where(entry) in message, message
    assert os.path.getsize(os.path.join(a.staging_dir, on_a)) == \
        os.path.getsize(sources[6])
    # B's imports were not A's to revert.
    for image_id in (on_b, late_b):
        image = b.wait_import(image_id)
        assert image["status"] == "active", (image, b.log_tail())
        assert [t["status"] for t in b.api_tasks(image_id)] == ["success"]
    # The kept upload imports (through B: Glance proxies it to A).
    b.glance("image-import", on_a, "--import-method", "glance-direct")
    image = b.wait_import(on_a)
    assert image["status"] == "active", (image, a.log_tail())
    assert common.converted_on(a, on_a)


def _wait_converting(image_id, timeout=120):
    """Until a conversion of ``image_id`` runs (its converter is alive)."""
    deadline = time.monotonic() + timeout
    while not qemu_procs.converter_pids(image_id):
        assert time.monotonic() < deadline, "no conversion of %s" % image_id
        time.sleep(0.01)


def _settled(node, image_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        image = node.image(image_id)
        running = [t for t in node.api_tasks(image_id)
                   if t["status"] in ("pending", "processing")]
        if not running and image["status"] != "importing" and \
                crash.entry_of(node.journal_dir, image_id) is None:
            return image
        time.sleep(0.3)
    raise AssertionError("image %s not recovered: %s\n%s"
                         % (image_id, node.image(image_id),
                            node.log_tail()))
