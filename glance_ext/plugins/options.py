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

"""Options every glance_ext import plugin shares (``[glance_ext]``).

Read from glance-image-import.conf (glance-api reads it too, so the
start-up recovery filter sees the same values).
"""

import os
import socket
from typing import List, Tuple

from oslo_config import cfg

GROUP = "glance_ext"

plugin_opts = [
    cfg.StrOpt("state_dir", default="",
               help="Directory of the import journal (one small file per "
                    "import in flight, read by the start-up recovery after "
                    "a crash or stop). Usually local to the node, like "
                    "Glance's staging directory; it may be shared by "
                    "several nodes (a staging directory mounted on every "
                    "node), as each node recovers only the entries of its "
                    "own 'host'. Empty means 'glance-ext-state' next to the "
                    "staging directory (for /var/lib/glance/staging: "
                    "/var/lib/glance/glance-ext-state)."),
    cfg.StrOpt("host", default=socket.gethostname(),
               sample_default="<current_hostname>",
               help="Name of this glance-api node in the files glance_ext "
                    "keeps: the owner of each import journal entry (only "
                    "the node of that name ever reverts it, after its own "
                    "restart), the conversion slot files and the recovery "
                    "lock. It must stay the same across restarts and differ "
                    "between nodes that share a staging or state "
                    "directory, and between containers that share a host "
                    "name but not a PID namespace."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(plugin_opts, group=GROUP)


def list_opts() -> List[Tuple[str, list]]:
    return [(GROUP, plugin_opts)]


def state_dir(conf: cfg.ConfigOpts, staging_dir: str) -> str:
    """The configured state directory, or the default beside staging."""
    register_opts(conf)
    configured = conf[GROUP].state_dir
    if configured:
        return configured
    parent = os.path.dirname(os.path.abspath(staging_dir).rstrip("/"))
    return os.path.join(parent, "glance-ext-state")


def journal_dir(conf: cfg.ConfigOpts, staging_dir: str) -> str:
    return os.path.join(state_dir(conf, staging_dir), "journal")


def host(conf: cfg.ConfigOpts) -> str:
    """This node's name for the journal and the slot files."""
    register_opts(conf)
    return (conf[GROUP].host or "").strip() or socket.gethostname()
