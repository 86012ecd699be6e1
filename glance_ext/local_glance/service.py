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
demo and every functional test use."""

import dataclasses
import importlib.util
import json
import os
import shutil
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


@dataclasses.dataclass
class State:
    """What a running local Glance is; stored as state.json."""

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

    def env(self) -> Dict[str, str]:
        return {"OS_IMAGE_URL": self.url, "OS_AUTH_TOKEN": self.member_token}


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


def up(settings: Settings) -> State:
    """Write the config, prepare the database and start glance-api."""
    state_dir = os.path.abspath(settings.state_dir)
    layout = config_files.Layout(state_dir)
    existing = read_state(state_dir)
    if existing and process.is_alive(existing.pid):
        raise errors.LocalGlanceError(
            "a local Glance already runs from %s (pid %d, %s); run "
            "`glance-ext local-glance down --state-dir %s` first"
            % (state_dir, existing.pid, existing.url, state_dir))
    if existing:
        # Left behind by a crash: clean up what it recorded, then start anew.
        _teardown(existing, layout)

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
    if settings.port:
        process.check_port_free(settings.port)
        port = settings.port
    else:
        port = process.free_port()

    layout.ensure()
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
    try:
        config_files.write_all(
            layout,
            config_files.api_conf(layout, port, db_url,
                                  settings.web_download_ports, api_extra,
                                  stores),
            config_files.import_conf(plugins, import_extra), paste)
        env = _server_env(layout)
        _db_sync(layout, env)
        cmd = process.gunicorn_command(port, settings.workers,
                                       settings.threads)
        pid = process.start(cmd, env, layout.log_file)
    except Exception:
        if cluster:
            postgres.destroy(cluster)
        raise
    url = "http://127.0.0.1:%d" % port
    state = State(pid=pid, port=port, url=url, db=settings.db,
                  plugins=list(plugins), member_token=settings.member_token,
                  admin_token=settings.admin_token, started_at=time.time(),
                  log_file=layout.log_file, staging_dir=layout.staging_dir,
                  postgres=cluster.to_dict() if cluster else None,
                  workers=settings.workers, threads=settings.threads,
                  startup_timeout=settings.startup_timeout)
    _write_state(layout, state)
    try:
        _wait_ready(state, layout)
    except Exception:
        _teardown(state, layout)
        raise
    LOG.info("local Glance up at %s (pid %d)", url, pid)
    return state


def _wait_ready(state: State, layout: config_files.Layout) -> None:
    process.wait_healthy(state.pid, state.url, layout.log_file,
                         state.startup_timeout)
    status = process.http_status(state.url + "/v2/images",
                                 token=state.member_token)
    if status != 200:
        raise errors.LocalGlanceError(
            "glance-api answers /healthcheck but GET /v2/images with "
            "the member token gave HTTP %s. Last lines of %s:\n%s"
            % (status, layout.log_file, process.log_tail(layout.log_file)))


def restart(state_dir: str) -> State:
    """Start glance-api again with the configuration, database, staging
    and store it had (stopping it first if it still runs): what a service
    manager does after a crash or for a restart. The configuration files
    are not rewritten."""
    state_dir = os.path.abspath(state_dir)
    layout = config_files.Layout(state_dir)
    state = read_state(state_dir)
    if state is None:
        raise errors.LocalGlanceError(
            "no local Glance recorded in %s; start one with `glance-ext "
            "local-glance up`" % state_dir)
    if process.is_alive(state.pid) or process.group_alive(state.pid):
        process.stop(state.pid)
    if state.postgres and not postgres.Cluster.from_dict(
            state.postgres).running():
        raise errors.LocalGlanceError(
            "the PostgreSQL cluster of %s is not running any more; start "
            "anew with `down` and `up`" % state_dir)
    process.check_port_free(state.port)
    state.pid = process.start(
        process.gunicorn_command(state.port, state.workers, state.threads),
        _server_env(layout), layout.log_file)
    state.started_at = time.time()
    _write_state(layout, state)
    _wait_ready(state, layout)
    LOG.info("local Glance restarted at %s (pid %d)", state.url, state.pid)
    return state


def _teardown(state: State, layout: config_files.Layout) -> None:
    process.stop(state.pid)
    if state.postgres:
        postgres.destroy(postgres.Cluster.from_dict(state.postgres))
    for path in (layout.state_file, layout.env_file):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    shutil.rmtree(layout.lock_dir, ignore_errors=True)


def down(state_dir: str, purge: bool = False) -> Optional[State]:
    """Stop the server and its database; returns what was stopped."""
    state_dir = os.path.abspath(state_dir)
    layout = config_files.Layout(state_dir)
    state = read_state(state_dir)
    if state:
        _teardown(state, layout)
    if purge:
        shutil.rmtree(state_dir, ignore_errors=True)
    return state


def status(state_dir: str) -> Dict:
    """Whether it runs and answers; a dict for text or JSON output."""
    state = read_state(os.path.abspath(state_dir))
    if not state:
        return {"running": False, "state_dir": os.path.abspath(state_dir)}
    alive = process.is_alive(state.pid)
    healthy = alive and process.http_status(
        state.url + "/healthcheck", timeout=2.0) == 200
    result = dataclasses.asdict(state)
    result.update({"running": alive, "healthy": healthy,
                   "state_dir": os.path.abspath(state_dir)})
    return result
