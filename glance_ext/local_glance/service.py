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

"""up, down and status of a local glance-api: the one implementation the
demo and every functional test use.

``Settings.nodes`` > 1 starts several glance-api processes as the
controllers of an HA cloud run them: each on its own port with its own
configuration, staging directory (so its own import journal and
conversion slots), tasks store and log, ``worker_self_reference_url``
set to its own URL (Glance then proxies an import to the node that holds
the staged data) and its own ``[glance_ext] host`` name; all share one
PostgreSQL database and one file store. ``shared_staging`` gives them one
staging directory instead. ``status``, ``restart`` and ``down`` cover
every node; ``restart`` can also restart one.
"""

import dataclasses
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from oslo_log import log as logging

from glance_ext.local_glance import config_files
from glance_ext.local_glance import errors
from glance_ext.local_glance import plugin_names
from glance_ext.local_glance import postgres
from glance_ext.local_glance import process

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class Settings:
    """Everything ``up`` needs; the CLI builds it from flags and options."""

    state_dir: str
    db: str = "sqlite"
    plugins: Sequence[str] = ()
    import_options: Sequence[str] = ()
    api_options: Sequence[str] = ()
    paste_filters: Sequence[str] = ()
    port: int = 0
    web_download_ports: Sequence[int] = (8765,)
    stores: Sequence[str] = ("fs",)
    workers: int = 1
    threads: int = 8
    startup_timeout: int = 90
    member_token: str = "demo:demo:member,reader"
    admin_token: str = "admin:admin:admin,member,reader"
    nodes: int = 1
    shared_staging: bool = False


@dataclasses.dataclass
class NodeState:
    """One glance-api process of a local Glance."""

    index: int
    pid: int
    port: int
    url: str
    log_file: str
    staging_dir: str
    etc_dir: str
    host: Optional[str] = None    # [glance_ext] host, when set per node

    @classmethod
    def from_dict(cls, data: Dict) -> "NodeState":
        return cls(**data)


@dataclasses.dataclass
class State:
    """What a running local Glance is; stored as state.json. The
    top-level pid, port, url, log_file and staging_dir are those of node
    0 (the only node of a one-node Glance)."""

    pid: int
    port: int
    url: str
    db: str
    plugins: List[str]
    member_token: str
    admin_token: str
    started_at: float
    log_file: str
    staging_dir: str
    postgres: Optional[Dict] = None
    workers: int = 1
    threads: int = 8
    startup_timeout: int = 90
    nodes: List[NodeState] = dataclasses.field(default_factory=list)
    shared_staging: bool = False

    def __post_init__(self) -> None:
        self.nodes = [n if isinstance(n, NodeState) else
                      NodeState.from_dict(n) for n in self.nodes or ()]

    def env(self) -> Dict[str, str]:
        return {"OS_IMAGE_URL": self.url, "OS_AUTH_TOKEN": self.member_token}

    def all_nodes(self) -> List[NodeState]:
        """Every node (a state written before nodes existed: one)."""
        if self.nodes:
            return list(self.nodes)
        return [NodeState(0, self.pid, self.port, self.url, self.log_file,
                          self.staging_dir,
                          os.path.join(os.path.dirname(self.log_file),
                                       "etc"))]

    def set_node(self, node: NodeState) -> None:
        """Record a node's new process (node 0 is also the top level)."""
        self.nodes = [node if n.index == node.index else n
                      for n in self.all_nodes()]
        if node.index == 0:
            self.pid, self.port, self.url = node.pid, node.port, node.url

    def layout(self, state_dir: str, index: int) -> config_files.Layout:
        root = config_files.Layout(state_dir)
        if len(self.all_nodes()) == 1:
            return root
        return root.for_node(index, self.shared_staging)


def _bin(name: str) -> str:
    """A console script of this environment (glance-manage lives here)."""
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(candidate):
        return candidate
    found = shutil.which(name)
    if not found:
        raise errors.LocalGlanceError(
            "%s not found next to %s nor on PATH; install Glance into this "
            "environment: pip install glance" % (name, sys.executable))
    return found


def check_prerequisites() -> None:
    """Fail early, with the fix, when something the server needs is absent."""
    if importlib.util.find_spec("gunicorn") is None:
        raise errors.LocalGlanceError(
            "gunicorn is not installed in %s's environment; install it: "
            "%s -m pip install gunicorn" % (sys.executable, sys.executable))
    if importlib.util.find_spec("glance") is None:
        raise errors.LocalGlanceError(
            "glance is not installed in %s's environment; install it: "
            "%s -m pip install glance" % (sys.executable, sys.executable))
    if shutil.which("qemu-img") is None:
        raise errors.LocalGlanceError(
            "qemu-img not found on PATH; install it with `apt-get install "
            "-y qemu-utils` (Debian/Ubuntu) or `dnf install qemu-img`")


def read_state(state_dir: str) -> Optional[State]:
    layout = config_files.Layout(state_dir)
    try:
        with open(layout.state_file) as fh:
            return State(**json.load(fh))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise errors.LocalGlanceError(
            "%s is unreadable (%s); remove it after making sure no "
            "glance-api from it still runs" % (layout.state_file, exc))


def _write_state(layout: config_files.Layout, state: State) -> None:
    tmp = layout.state_file + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(dataclasses.asdict(state), fh, indent=2)
    os.replace(tmp, layout.state_file)
    with open(layout.env_file, "w") as fh:
        for key, value in state.env().items():
            fh.write("export %s=%s\n" % (key, value))


def _server_env(layout: config_files.Layout) -> Dict[str, str]:
    env = dict(os.environ)
    env["OS_GLANCE_CONFIG_DIR"] = layout.etc_dir
    # The venv's console scripts (qemu-img wrappers, prlimit) first.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get(
        "PATH", "")
    return env


def _db_sync(layout: config_files.Layout, env: Dict[str, str]) -> None:
    cmd = [_bin("glance-manage"), "--config-file",
           os.path.join(layout.etc_dir, config_files.API_CONF), "db_sync"]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise errors.LocalGlanceError(
            "glance-manage db_sync failed (exit %d):\n%s"
            % (proc.returncode, proc.stdout[-3000:]))


# The filter whose factory does our plugins' start-up work (Glance loads
# the plugins themselves only when an import runs): the recovery of
# imports a stop interrupted, whichever of our plugins is enabled.
RECOVERY_FILTER = "glance_ext.middleware.startup_recovery:filter_factory"
# With the convert plugin, copy-image may not break the per-store format.
COPY_IMAGE_FILTER = "glance_ext.middleware.copy_image:filter_factory"


def startup_filters(plugins: Sequence[str]) -> List[str]:
    filters = [RECOVERY_FILTER] if any(
        p.startswith("glance_ext_") for p in plugins) else []
    if "glance_ext_convert" in plugins:
        filters.append(COPY_IMAGE_FILTER)
    return filters


def _node_layouts(settings: Settings, root: config_files.Layout
                  ) -> List[config_files.Layout]:
    if settings.nodes == 1:
        return [root]
    return [root.for_node(i, settings.shared_staging)
            for i in range(settings.nodes)]


def _ports(settings: Settings) -> List[int]:
    """One port per node: ``port``, ``port + 1``... or free ones."""
    if settings.port:
        ports = [settings.port + i for i in range(settings.nodes)]
        for port in ports:
            process.check_port_free(port)
        return ports
    ports: List[int] = []
    while len(ports) < settings.nodes:
        port = process.free_port()
        if port not in ports:
            ports.append(port)
    return ports


def node_host(index: int) -> str:
    """The ``[glance_ext] host`` of node ``index`` of several: each node
    stands for a controller of its own."""
    return "%s-node%d" % (socket.gethostname(), index)


def up(settings: Settings) -> State:
    """Write the config, prepare the database and start glance-api (one
    process per node)."""
    state_dir = os.path.abspath(settings.state_dir)
    layout = config_files.Layout(state_dir)
    existing = read_state(state_dir)
    if existing and any(process.is_alive(n.pid)
                        for n in existing.all_nodes()):
        raise errors.LocalGlanceError(
            "a local Glance already runs from %s (pid %d, %s); run "
            "`glance-ext local-glance down --state-dir %s` first"
            % (state_dir, existing.pid, existing.url, state_dir))
    if existing:
        # Left behind by a crash: clean up what it recorded, then start anew.
        _teardown(existing, state_dir)

    if settings.nodes < 1:
        raise errors.LocalGlanceError("--nodes must be at least 1")
    if settings.nodes > 1 and settings.db != "postgresql":
        raise errors.LocalGlanceError(
            "%d nodes need one database they can all write at once: use "
            "--db postgresql (SQLite allows one writer; concurrent imports "
            "lock up)" % settings.nodes)
    if settings.shared_staging and settings.nodes == 1:
        raise errors.LocalGlanceError(
            "--shared-staging needs --nodes 2 or more")
    check_prerequisites()
    plugins = plugin_names.resolve(settings.plugins)
    try:
        api_extra = config_files.parse_overrides(settings.api_options)
        import_extra = config_files.parse_overrides(settings.import_options)
        paste = config_files.paste_ini(
            startup_filters(plugins) + list(settings.paste_filters))
        stores = config_files.check_stores(settings.stores)
    except ValueError as exc:
        raise errors.LocalGlanceError(str(exc))
    ports = _ports(settings)
    layouts = _node_layouts(settings, layout)

    os.makedirs(state_dir, exist_ok=True)
    for node_layout in layouts:
        node_layout.ensure()
    cluster = None
    if settings.db == "postgresql":
        cluster = postgres.create(process.free_port())
        db_url = cluster.url
    elif settings.db == "sqlite":
        # SQLite allows one writer; an import's task updates then wait for
        # concurrent API reads (a client polling the image). sqlite3's
        # default 5 s busy timeout turns a loaded machine's wait into
        # "database is locked" and a failed import; wait longer instead.
        db_url = "sqlite:///%s?timeout=60" % layout.sqlite_file
    else:
        raise errors.LocalGlanceError(
            "unknown --db %r; use sqlite or postgresql" % settings.db)
    nodes: List[NodeState] = []
    try:
        for index, (node_layout, port) in enumerate(zip(layouts, ports)):
            host = None
            node_import = import_extra
            if settings.nodes > 1 and "host" not in import_extra.get(
                    "glance_ext", {}):
                host = node_host(index)
                node_import = config_files._merge(
                    import_extra, {"glance_ext": {"host": host}})
            config_files.write_all(
                node_layout,
                config_files.api_conf(node_layout, port, db_url,
                                      settings.web_download_ports,
                                      api_extra, stores),
                config_files.import_conf(plugins, node_import), paste)
            nodes.append(NodeState(
                index=index, pid=0, port=port,
                url="http://127.0.0.1:%d" % port,
                log_file=node_layout.log_file,
                staging_dir=node_layout.staging_dir,
                etc_dir=node_layout.etc_dir, host=host))
        _db_sync(layouts[0], _server_env(layouts[0]))
        for node, node_layout in zip(nodes, layouts):
            node.pid = process.start(
                process.gunicorn_command(node.port, settings.workers,
                                         settings.threads),
                _server_env(node_layout), node_layout.log_file)
    except Exception:
        for node in nodes:
            if node.pid:
                process.stop(node.pid)
        if cluster:
            postgres.destroy(cluster)
        raise
    first = nodes[0]
    state = State(pid=first.pid, port=first.port, url=first.url,
                  db=settings.db,
                  plugins=list(plugins), member_token=settings.member_token,
                  admin_token=settings.admin_token, started_at=time.time(),
                  log_file=first.log_file, staging_dir=first.staging_dir,
                  postgres=cluster.to_dict() if cluster else None,
                  workers=settings.workers, threads=settings.threads,
                  startup_timeout=settings.startup_timeout, nodes=nodes,
                  shared_staging=settings.shared_staging)
    _write_state(layout, state)
    try:
        for node in nodes:
            _wait_ready(state, node)
    except Exception:
        _teardown(state, state_dir)
        raise
    LOG.info("local Glance up at %s", ", ".join(
        "%s (pid %d)" % (n.url, n.pid) for n in nodes))
    return state


def _wait_ready(state: State, node: NodeState) -> None:
    process.wait_healthy(node.pid, node.url, node.log_file,
                         state.startup_timeout)
    status = process.http_status(node.url + "/v2/images",
                                 token=state.member_token)
    if status != 200:
        raise errors.LocalGlanceError(
            "glance-api answers /healthcheck but GET /v2/images with "
            "the member token gave HTTP %s. Last lines of %s:\n%s"
            % (status, node.log_file, process.log_tail(node.log_file)))


def restart(state_dir: str, node: Optional[int] = None) -> State:
    """Start glance-api again with the configuration, database, staging
    and store it had (stopping it first if it still runs): what a service
    manager does after a crash or for a restart. ``node``: only that node
    (the others keep running). The configuration files are not
    rewritten."""
    state_dir = os.path.abspath(state_dir)
    state = read_state(state_dir)
    if state is None:
        raise errors.LocalGlanceError(
            "no local Glance recorded in %s; start one with `glance-ext "
            "local-glance up`" % state_dir)
    nodes = state.all_nodes()
    if node is not None:
        if not 0 <= node < len(nodes):
            raise errors.LocalGlanceError(
                "--node %d: this local Glance has node%s 0%s" % (
                    node, "s" if len(nodes) > 1 else "",
                    "-%d" % (len(nodes) - 1) if len(nodes) > 1 else ""))
        nodes = [nodes[node]]
    for n in nodes:
        if process.is_alive(n.pid) or process.group_alive(n.pid):
            process.stop(n.pid)
    if state.postgres and not postgres.Cluster.from_dict(
            state.postgres).running():
        raise errors.LocalGlanceError(
            "the PostgreSQL cluster of %s is not running any more; start "
            "anew with `down` and `up`" % state_dir)
    for n in nodes:
        process.check_port_free(n.port)
        layout = state.layout(state_dir, n.index)
        n.pid = process.start(
            process.gunicorn_command(n.port, state.workers, state.threads),
            _server_env(layout), layout.log_file)
        state.set_node(n)
    state.started_at = time.time()
    _write_state(config_files.Layout(state_dir), state)
    for n in nodes:
        _wait_ready(state, n)
        LOG.info("local Glance node %d restarted at %s (pid %d)", n.index,
                 n.url, n.pid)
    return state


def _teardown(state: State, state_dir: str) -> None:
    for node in state.all_nodes():
        process.stop(node.pid)
    if state.postgres:
        postgres.destroy(postgres.Cluster.from_dict(state.postgres))
    layout = config_files.Layout(state_dir)
    for path in (layout.state_file, layout.env_file):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    for node in state.all_nodes():
        shutil.rmtree(state.layout(state_dir, node.index).lock_dir,
                      ignore_errors=True)


def down(state_dir: str, purge: bool = False) -> Optional[State]:
    """Stop the server and its database; returns what was stopped."""
    state_dir = os.path.abspath(state_dir)
    state = read_state(state_dir)
    if state:
        _teardown(state, state_dir)
    if purge:
        shutil.rmtree(state_dir, ignore_errors=True)
    return state


def status(state_dir: str) -> Dict:
    """Whether it runs and answers; a dict for text or JSON output."""
    state = read_state(os.path.abspath(state_dir))
    if not state:
        return {"running": False, "state_dir": os.path.abspath(state_dir)}
    result = dataclasses.asdict(state)
    nodes = []
    for node in state.all_nodes():
        alive = process.is_alive(node.pid)
        info = dataclasses.asdict(node)
        info.update(running=alive, healthy=alive and process.http_status(
            node.url + "/healthcheck", timeout=2.0) == 200)
        nodes.append(info)
    result.update({"running": all(n["running"] for n in nodes),
                   "healthy": all(n["healthy"] for n in nodes),
                   "nodes": nodes,
                   "state_dir": os.path.abspath(state_dir)})
    return result
