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

"""Options of ``glance-ext local-glance`` (group ``[local_glance]``).

Command-line flags of the sub-command override these; the options exist so
a developer can keep a personal default in a config file and so that
``oslo-config-generator`` documents them with everything else.
"""

from typing import List, Tuple

from oslo_config import cfg

GROUP = "local_glance"

OPTS = [
    cfg.StrOpt("state_dir", default=".state/local-glance",
               help="Directory that holds the local Glance's configuration, "
                    "database, stores, logs and pid. Created by `up`."),
    cfg.StrOpt("db", default="sqlite", choices=[
                   ("sqlite", "a file database: imports one at a time"),
                   ("postgresql", "a throwaway PostgreSQL cluster: needed "
                                  "for concurrent imports")],
               help="Database backend. sqlite is fine for one import at a "
                    "time; postgresql starts a throwaway cluster and is "
                    "needed for concurrent imports."),
    cfg.IntOpt("workers", default=1, min=1, max=16,
               help="gunicorn worker processes."),
    cfg.IntOpt("threads", default=8, min=1, max=64,
               help="Threads per gunicorn worker (gthread worker class)."),
    cfg.PortOpt("port", default=0,
                help="Port on 127.0.0.1 for glance-api; 0 picks a free one."),
    cfg.ListOpt("web_download_ports", default=["8765"],
                help="Ports on 127.0.0.1 that web-download may fetch from "
                     "(the demo's HTTP server listens on the first)."),
    cfg.IntOpt("startup_timeout", default=90, min=5,
               help="Seconds to wait for /healthcheck after starting."),
    cfg.StrOpt("member_token", default="demo:demo:member,reader",
               help="Token printed for ordinary use: user:project:roles."),
    cfg.StrOpt("admin_token", default="admin:admin:admin,member,reader",
               help="Token printed for admin calls: user:project:roles."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)


def list_opts() -> List[Tuple[str, List[cfg.Opt]]]:
    return [(GROUP, list(OPTS))]
