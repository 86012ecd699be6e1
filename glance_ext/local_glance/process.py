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

"""Starting and stopping glance-api under gunicorn.

The server runs in its own session (process group) so that ``down`` can
signal the master and every worker at once and leave nothing behind, even
when the master has already died.
"""

import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Dict, List, Optional

import psutil

from glance_ext.local_glance import errors

WSGI_APP = "glance_ext.local_glance.wsgi:application"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_port_free(port: int) -> None:
    """Whether gunicorn can listen on ``port``: it binds with SO_REUSEADDR,
    so connections of a stopped server still in TIME_WAIT do not count,
    only a socket listening there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise errors.LocalGlanceError(
                    "port %d on 127.0.0.1 is already in use; stop what "
                    "listens there, choose another with --port, or leave "
                    "--port out to pick a free one" % port)
            raise


def log_tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no log at %s)" % path
    return "\n".join(data.splitlines()[-lines:])


def gunicorn_command(port: int, workers: int, threads: int) -> List[str]:
    return [sys.executable, "-m", "gunicorn",
            "--worker-class", "gthread", "--threads", str(threads),
            "--workers", str(workers), "--bind", "127.0.0.1:%d" % port,
            # Uploads of large images and long imports hold a thread.
            "--timeout", "600", "--graceful-timeout", "15",
            "--access-logfile", "-", WSGI_APP]


def start(cmd: List[str], env: Dict[str, str], log_file: str) -> int:
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
    return proc.pid


def is_alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0): reap it if it is our child, and
    # otherwise (a crashed server whose parent never reaps it) ask its
    # state.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE,
                                                    psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def http_status(url: str, token: Optional[str] = None,
                timeout: float = 5.0) -> Optional[int]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def wait_healthy(pid: int, url: str, log_file: str, timeout: float) -> None:
    """Wait for /healthcheck; on failure, say why with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            raise errors.LocalGlanceError(
                "glance-api exited during start-up. Last lines of %s:\n%s"
                % (log_file, log_tail(log_file)))
        if http_status(url + "/healthcheck", timeout=2.0) == 200:
            return
        time.sleep(0.25)
    raise errors.LocalGlanceError(
        "glance-api did not answer %s/healthcheck within %ds. Last lines "
        "of %s:\n%s" % (url, timeout, log_file, log_tail(log_file)))


def stop(pgid: int, timeout: float = 20.0) -> None:
    """SIGTERM the whole group, then SIGKILL whatever is left."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            is_alive(pgid)  # reaps the master if it is our child
            if not group_alive(pgid):
                return
            time.sleep(0.1)
    if group_alive(pgid):
        raise errors.LocalGlanceError(
            "processes of group %d survived SIGKILL" % pgid)
