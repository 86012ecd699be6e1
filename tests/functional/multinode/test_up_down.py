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

"""``glance-ext local-glance`` with two nodes: status, restart, down.

Through the real CLI, two real glance-api nodes on one PostgreSQL. What
this proves: ``status`` reports every node (each running and answering
``/healthcheck``, on its own port); ``restart --node 1`` starts node 1
again and leaves node 0's process alone; ``down`` stops every node's
process and the PostgreSQL cluster, after which ``status`` says not
running (exit 1).
"""

import json

from glance_ext.local_glance import client
from glance_ext.local_glance import postgres
from glance_ext.testing import crash


def _status(state_dir):
    proc = client.run([client.GLANCE_EXT, "local-glance", "status",
                       "--state-dir", state_dir, "--format", "json"],
                      check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_status_restart_and_down_cover_every_node(local_glance_factory):
    glance = local_glance_factory(db="postgresql", nodes=2)
    state_dir = glance.state_dir
    rc, info = _status(state_dir)
    assert rc == 0 and info["running"] and info["healthy"], info
    nodes = info["nodes"]
    assert len(nodes) == 2 and nodes[0]["url"] != nodes[1]["url"]
    assert all(n["running"] and n["healthy"] for n in nodes), nodes
    cluster = postgres.Cluster.from_dict(info["postgres"])
    assert cluster.running()
    first = [n["pid"] for n in nodes]

    restarted = glance.nodes[1].restart()
    assert restarted.pid != first[1]
    crash.wait_gone_group(first[1])
    rc, info = _status(state_dir)
    assert rc == 0 and info["healthy"], info
    # Node 0 was left alone.
    assert [n["pid"] for n in info["nodes"]] == [first[0], restarted.pid]

    glance.down()
    for pid in (first[0], restarted.pid):
        crash.wait_gone_group(pid)
    assert not cluster.running()
    rc, info = _status(state_dir)
    assert rc == 1 and not info["running"], info
