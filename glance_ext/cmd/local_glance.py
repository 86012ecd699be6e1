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

"""``glance-ext local-glance up|down|status|restart``: a real glance-api,
locally; ``--nodes N`` for several, as on the controllers of an HA
cloud."""

import argparse
import json
import sys
from typing import List

from oslo_config import cfg

from glance_ext.local_glance import errors
from glance_ext.local_glance import options
from glance_ext.local_glance import service


def _csv(value: str) -> List[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _ports(value: str) -> List[int]:
    try:
        ports = [int(v) for v in _csv(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            "ports must be comma-separated integers, got %r" % value)
    for port in ports:
        if not 0 < port < 65536:
            raise argparse.ArgumentTypeError("port %d out of range" % port)
    return ports


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "local-glance", help="run a real glance-api locally (demo, tests)",
        description="Run a real glance-api (gunicorn + Glance's WSGI app) "
                    "with glance_ext's plugins, a file store and a "
                    "keystone-less token filter. Not for production.")
    parser.add_argument("action", choices=["up", "down", "status",
                                           "restart"],
                        help="restart: start glance-api again with the "
                             "same configuration, database and data (after "
                             "a crash, or to apply a change by hand)")
    parser.add_argument("--state-dir")
    parser.add_argument("--db", choices=["sqlite", "postgresql"])
    parser.add_argument("--plugins", type=_csv, default=None,
                        help="import plugins in order, comma-separated; "
                             "'all' = every glance_ext plugin installed")
    parser.add_argument("--import-option", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="extra line for glance-image-import.conf")
    parser.add_argument("--api-option", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="extra line for glance-api.conf")
    parser.add_argument("--paste-filter", action="append", default=[],
                        metavar="MODULE:FACTORY",
                        help="extra paste filter, after Glance's context")
    parser.add_argument("--stores", type=_csv, default=None,
                        help="file store ids, comma-separated; the first "
                             "is the default backend (default: fs)")
    parser.add_argument("--nodes", type=int, default=1, metavar="N",
                        help="up: N glance-api processes (nodes) on their "
                             "own ports, each with its own staging "
                             "directory and worker_self_reference_url, "
                             "sharing one PostgreSQL database and one file "
                             "store (default 1)")
    parser.add_argument("--shared-staging", action="store_true",
                        help="up with --nodes: one staging directory for "
                             "every node, as when it is mounted on every "
                             "controller")
    parser.add_argument("--node", type=int, metavar="I",
                        help="restart: only node I (0-based); the others "
                             "keep running")
    parser.add_argument("--port", type=int,
                        help="port of the first node; node I gets PORT+I "
                             "(default: free ports)")
    parser.add_argument("--web-download-ports", type=_ports)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--purge", action="store_true",
                        help="down: also delete the state directory")
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="output of up and status")
    parser.set_defaults(func=run)


def _conf(files: List[str], dirs: List[str]) -> cfg.ConfigOpts:
    """``[local_glance]`` from ``--config-file``/``--config-dir``: defaults
    for the flags (logging is set up by ``glance-ext`` itself)."""
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    try:
        conf(args=[], project="glance-ext", default_config_files=files,
             default_config_dirs=dirs)
    except cfg.Error as exc:
        raise errors.LocalGlanceError("bad configuration: %s" % exc)
    return conf


def _pick(flag, default):
    return default if flag is None else flag


def _settings(args: argparse.Namespace, conf: cfg.ConfigOpts
              ) -> service.Settings:
    group = conf.local_glance
    return service.Settings(
        state_dir=_pick(args.state_dir, group.state_dir),
        # Several nodes need a database they can all write: PostgreSQL
        # unless asked otherwise (which up then refuses, saying why).
        db=_pick(args.db, "postgresql" if args.nodes > 1 else group.db),
        nodes=args.nodes,
        shared_staging=args.shared_staging,
        plugins=_pick(args.plugins, []),
        import_options=args.import_option,
        api_options=args.api_option,
        paste_filters=args.paste_filter,
        port=_pick(args.port, group.port),
        stores=_pick(args.stores, ["fs"]),
        web_download_ports=_pick(args.web_download_ports,
                                 [int(p) for p in group.web_download_ports]),
        workers=_pick(args.workers, group.workers),
        threads=group.threads,
        startup_timeout=group.startup_timeout,
        member_token=group.member_token,
        admin_token=group.admin_token)


def _print_up(state: service.State) -> None:
    nodes = state.all_nodes()
    if len(nodes) == 1:
        print("glance-api is running at %s (pid %d, db %s)"
              % (state.url, state.pid, state.db))
    else:
        print("%d glance-api nodes are running (db %s, one file store%s):"
              % (len(nodes), state.db,
                 ", one shared staging directory" if state.shared_staging
                 else ""))
        for node in nodes:
            print("  node %d: %s (pid %d, staging %s, log %s)"
                  % (node.index, node.url, node.pid, node.staging_dir,
                     node.log_file))
    print("import plugins: %s" % (", ".join(state.plugins) or "(none)"))
    print("log: %s" % state.log_file)
    print("Use it with the glance CLI:")
    print("  export OS_IMAGE_URL=%s" % state.url)
    print("  export OS_AUTH_TOKEN=%s" % state.member_token)
    print("  (admin calls: OS_AUTH_TOKEN=%s)" % state.admin_token)


def run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args, _conf(args.config_file, args.config_dir))
        if args.action in ("up", "restart"):
            state = service.up(settings) if args.action == "up" else \
                service.restart(settings.state_dir, node=args.node)
            if args.format == "json":
                print(json.dumps(service.status(settings.state_dir),
                                 indent=2, sort_keys=True))
            else:
                _print_up(state)
            return 0
        if args.action == "down":
            state = service.down(settings.state_dir, purge=args.purge)
            if state:
                for node in state.all_nodes():
                    print("stopped glance-api pid %d (%s)"
                          % (node.pid, node.url))
            else:
                print("no local Glance recorded in %s" % settings.state_dir)
            return 0
        info = service.status(settings.state_dir)
        if args.format == "json":
            print(json.dumps(info, indent=2, sort_keys=True))
        elif "nodes" not in info:
            print("not running (%s)" % info["state_dir"])
        else:
            for node in info["nodes"]:
                print("%s: %s pid %d healthy=%s db=%s plugins=%s"
                      % ("running" if node["running"] else "not running",
                         node["url"], node["pid"], node["healthy"],
                         info["db"], ",".join(info["plugins"]) or "(none)"))
        return 0 if info["running"] else 1
    except errors.LocalGlanceError as exc:
        print("glance-ext local-glance %s: error: %s" % (args.action, exc),
              file=sys.stderr)
        return 1
