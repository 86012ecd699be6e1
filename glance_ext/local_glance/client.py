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

"""Drives a real local Glance for functional tests.

Everything goes through the same commands an operator or user runs: the
server is started with ``glance-ext local-glance up`` and images are
imported with the real ``glance`` CLI. Polling reads the v2 API directly
(one HTTP GET instead of a CLI process per poll keeps the 2-core CI fast).
"""

import functools
import http.server
import json
import os
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Sequence

BIN_DIR = os.path.dirname(sys.executable)
GLANCE_EXT = os.path.join(BIN_DIR, "glance-ext")
GLANCE = os.path.join(BIN_DIR, "glance")


class CommandFailed(AssertionError):
    pass


# run(stdin=CLOSED) starts the command with fd 0 closed: the glance CLI
# treats any stdin that is not a terminal, even /dev/null, as image data.
CLOSED = object()


def _close_stdin() -> None:
    os.close(0)


def run(cmd: Sequence[str], env: Optional[Dict[str, str]] = None,
        check: bool = True, stdin=CLOSED, timeout: float = 600
        ) -> subprocess.CompletedProcess:
    closed = stdin is CLOSED
    proc = subprocess.run(list(cmd), env=env,
                          stdin=None if closed else stdin,
                          preexec_fn=_close_stdin if closed else None,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise CommandFailed("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                            % (" ".join(cmd), proc.returncode, proc.stdout,
                               proc.stderr))
    return proc


def parse_table(text: str) -> Dict[str, str]:
    """The ``| Property | Value |`` table the glance CLI prints."""
    result: Dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|", 1)]
        if len(cells) != 2:
            continue
        key, value = cells
        if key in ("Property", "Field") and value == "Value":
            continue
        if key:
            result[key] = value
            last = key
        elif last:
            result[last] += value
    return result


def parse_rows(text: str) -> List[Dict[str, str]]:
    """A multi-column table (``glance image-tasks``) as a list of dicts."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    if not rows:
        return []
    header = [c.strip() for c in rows[0].strip().strip("|").split("|")]
    out = []
    for line in rows[1:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == len(header):
            out.append(dict(zip(header, cells)))
    return out


class LocalGlance(object):
    """A running glance-api started by ``glance-ext local-glance up``.

    With several nodes this object speaks to node 0 (and ``restart``
    restarts all); ``nodes`` holds one LocalGlance per node, each talking
    to its own glance-api (its ``restart`` restarts that node only).
    """

    def __init__(self, state_dir: str, info: Dict,
                 node: Optional[int] = None) -> None:
        self.state_dir = state_dir
        self.info = info
        self.node = node
        mine = dict(info)
        node_infos = info.get("nodes") or []
        if node is not None:
            mine.update(node_infos[node])
        self.url = mine["url"]
        self.token = info["member_token"]
        self.admin_token = info["admin_token"]
        self.staging_dir = mine["staging_dir"]
        self.log_path = mine["log_file"]
        self.pid = mine["pid"]
        self.env = dict(os.environ, OS_IMAGE_URL=self.url,
                        OS_AUTH_TOKEN=self.token)
        self.nodes: List["LocalGlance"] = [] if node is not None else [
            LocalGlance(state_dir, info, i) for i in range(len(node_infos))]

    # -- the real glance CLI -------------------------------------------
    def glance(self, *args: str, token: Optional[str] = None,
               check: bool = True, stdin=CLOSED
               ) -> subprocess.CompletedProcess:
        env = dict(self.env)
        if token:
            env["OS_AUTH_TOKEN"] = token
        return run([GLANCE] + list(args), env=env, check=check, stdin=stdin)

    def import_file(self, path: str, disk_format: str,
                    container_format: str = "bare",
                    name: Optional[str] = None,
                    stores: Sequence[str] = (), **props: str) -> str:
        """glance-direct through ``glance image-create-via-import``.

        The CLI refuses ``--file`` when stdin is not a terminal, so the
        data goes in on stdin, as a user piping an image would do.
        """
        args = ["image-create-via-import", "--disk-format", disk_format,
                "--container-format", container_format,
                "--name", name or os.path.basename(path),
                "--import-method", "glance-direct"]
        if stores:
            args += ["--stores", ",".join(stores)]
        for key, value in props.items():
            args += ["--property", "%s=%s" % (key, value)]
        with open(path, "rb") as data:
            proc = self.glance(*args, stdin=data)
        return parse_table(proc.stdout)["id"]

    def create_and_stage(self, path: str, disk_format: str,
                         container_format: str = "bare") -> str:
        """``image-create`` then ``image-stage``: an image ready for a
        glance-direct import that has not started."""
        proc = self.glance("image-create", "--disk-format", disk_format,
                           "--container-format", container_format,
                           "--name", os.path.basename(path))
        image_id = parse_table(proc.stdout)["id"]
        with open(path, "rb") as data:
            self.glance("image-stage", image_id, stdin=data)
        return image_id

    def start_import(self, image_id: str) -> subprocess.Popen:
        """``glance image-import`` in the background, so a caller can watch
        the import from its first step (the CLI returns only after it has
        shown the image, when short steps may be over)."""
        return subprocess.Popen(
            [GLANCE, "image-import", image_id, "--import-method",
             "glance-direct"], env=dict(self.env),
            preexec_fn=_close_stdin, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)

    def stage_and_import(self, image_id: str, path: str) -> None:
        """Re-stage data for an existing (queued) image and import it."""
        with open(path, "rb") as data:
            self.glance("image-stage", image_id, stdin=data)
        self.glance("image-import", image_id, "--import-method",
                    "glance-direct")

    def web_download(self, uri: str, disk_format: str,
                     container_format: str = "bare",
                     name: Optional[str] = None) -> str:
        proc = self.glance("image-create-via-import", "--disk-format",
                           disk_format, "--container-format",
                           container_format, "--name",
                           name or uri.rsplit("/", 1)[-1],
                           "--import-method", "web-download", "--uri", uri)
        return parse_table(proc.stdout)["id"]

    def tasks(self, image_id: str) -> List[Dict[str, str]]:
        """``glance image-tasks``: Message, Status, ... per task."""
        return parse_rows(self.glance("image-tasks", image_id).stdout)

    # -- the API, for polling -----------------------------------------
    def api(self, path: str, token: Optional[str] = None):
        req = urllib.request.Request(self.url + path)
        req.add_header("X-Auth-Token", token or self.token)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read().decode())

    def image(self, image_id: str) -> Dict:
        return self.api("/v2/images/%s" % image_id)

    def api_tasks(self, image_id: str) -> List[Dict]:
        return self.api("/v2/images/%s/tasks" % image_id)["tasks"]

    def wait_import(self, image_id: str, timeout: float = 180) -> Dict:
        """Wait until the image's import is over, either way.

        The import task's end is what counts: Glance makes the image
        active inside the store upload, before its own tasks delete the
        staged data and drop the lock, so "active" alone can be seen while
        staging still holds our files. The task ends after all of that,
        and after a failed flow has reverted (the image is then final:
        queued after a correct revert, ``importing`` for good when no
        revert cleaned up). Glance creates the task before the import call
        returns, so after a retry the new task is pending or processing
        until its import ends; task times have whole-second resolution,
        hence "no task still running" rather than "the newest task".
        """
        deadline = time.monotonic() + timeout
        image: Dict = {}
        while time.monotonic() < deadline:
            tasks = self.api_tasks(image_id)
            running = [t for t in tasks
                       if t["status"] in ("pending", "processing")]
            image = self.image(image_id)
            if tasks and not running:
                return image
            time.sleep(0.5)
        raise AssertionError("import of %s not finished in %ss; last image "
                             "state: %s\nlog tail:\n%s"
                             % (image_id, timeout, image, self.log_tail()))

    def log_tail(self, lines: int = 60) -> str:
        with open(self.log_path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])

    def staged_files(self) -> List[str]:
        return sorted(os.listdir(self.staging_dir))

    def staged_file_gone(self, image_id: str, timeout: float = 15) -> bool:
        """Whether nothing of ``image_id`` is left in staging.

        Glance marks an image active before its own delete-from-staging
        task has run, so this waits a moment for it.
        """
        deadline = time.monotonic() + timeout
        while image_id in " ".join(self.staged_files()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def down(self) -> None:
        run([GLANCE_EXT, "local-glance", "down", "--state-dir",
             self.state_dir])

    def restart(self) -> "LocalGlance":
        """``local-glance restart``: the same Glance (configuration,
        database, staging, store) started again; the new process's view.
        For a node of several, that node only (``--node``)."""
        cmd = [GLANCE_EXT, "local-glance", "restart", "--state-dir",
               self.state_dir, "--format", "json"]
        if self.node is not None:
            cmd += ["--node", str(self.node)]
        proc = run(cmd)
        return LocalGlance(self.state_dir, json.loads(proc.stdout),
                           self.node)

    def status(self) -> Dict:
        """``local-glance status --format json`` (every node)."""
        proc = run([GLANCE_EXT, "local-glance", "status", "--state-dir",
                    self.state_dir, "--format", "json"], check=False)
        return json.loads(proc.stdout)

    @property
    def journal_dir(self) -> str:
        """The import journal of this Glance (``[glance_ext] state_dir``
        at its default, next to staging)."""
        return os.path.join(os.path.dirname(self.staging_dir),
                            "glance-ext-state", "journal")

    @property
    def store_dir(self) -> str:
        """The data directory of the default file store ``fs``."""
        return os.path.join(self.state_dir, "images")


def start_local_glance(state_dir: str, plugins: Sequence[str] = (),
                       import_options: Optional[Dict[str, str]] = None,
                       api_options: Optional[Dict[str, str]] = None,
                       db: str = "sqlite", workers: int = 1,
                       paste_filters: Sequence[str] = (),
                       web_download_port: Optional[int] = None,
                       stores: Sequence[str] = (), nodes: int = 1,
                       shared_staging: bool = False
                       ) -> LocalGlance:
    """``glance-ext local-glance up`` with the given settings.

    ``import_options``/``api_options`` map ``SECTION.KEY`` to a value.
    ``nodes`` > 1 starts that many glance-api nodes (PostgreSQL, one
    store, a staging directory each unless ``shared_staging``).
    """
    cmd = [GLANCE_EXT, "local-glance", "up", "--state-dir", state_dir,
           "--db", db, "--workers", str(workers), "--format", "json"]
    if nodes != 1:
        cmd += ["--nodes", str(nodes)]
    if shared_staging:
        cmd += ["--shared-staging"]
    if plugins:
        cmd += ["--plugins", ",".join(plugins)]
    for key, value in (import_options or {}).items():
        cmd += ["--import-option", "%s=%s" % (key, value)]
    for key, value in (api_options or {}).items():
        cmd += ["--api-option", "%s=%s" % (key, value)]
    for factory in paste_filters:
        cmd += ["--paste-filter", factory]
    if web_download_port:
        cmd += ["--web-download-ports", str(web_download_port)]
    if stores:
        cmd += ["--stores", ",".join(stores)]
    proc = run(cmd)
    return LocalGlance(state_dir, json.loads(proc.stdout))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class HTTPServer(object):
    """Serves a directory on a free 127.0.0.1 port (web-download source)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        handler = functools.partial(_QuietHandler, directory=directory)
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0),
                                                       handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        daemon=True)
        self._thread.start()

    def url_for(self, name: str) -> str:
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
