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

"""Real coordination servers (etcd, redis) for tests and benchmarks.

The cluster-wide conversion cap and the cache manager's election talk to
etcd or redis through tooz; a mock of either would only prove that the
code agrees with the mock. These start Debian's ``etcd`` (etcd-server,
3.4) and ``redis-server`` (7.0) on their own free loopback ports, with
their data in a directory of their own, and stop them again. A test can
also stop a server in the middle of a run (``stop``/``kill``) and start
it again on the same port (``start``): that is how "the backend went
away" is tested.

Each server runs in its own session so that stopping it never signals
the test runner, and is registered for an ``atexit`` stop so an aborted
session leaves nothing running. ``tools/install-system-deps.sh --test``
installs both binaries.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import List, Optional

from glance_ext.exceptions import CoordinationServerUnavailable

ETCD = "etcd"
REDIS = "redis-server"
INSTALL_HINT = ("install it with tools/install-system-deps.sh --test "
                "(Debian packages etcd-server and redis-server)")

_RUNNING: List["Server"] = []


# The server binary is missing or the server did not start (defined with
# every other error in glance_ext.exceptions).
ServerUnavailable = CoordinationServerUnavailable


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing(binary: str) -> Optional[str]:
    """Why ``binary`` cannot run here, or None."""
    if shutil.which(binary) is None:
        return "%s not found on PATH; %s" % (binary, INSTALL_HINT)
    return None


class Server:
    """One server process; subclasses say how to run and probe it."""

    name = "server"
    binary = ""

    def __init__(self, base_dir: Optional[str] = None) -> None:
        self.base_dir = base_dir or tempfile.mkdtemp(
            prefix="glance-ext-%s-" % self.name)
        os.makedirs(self.base_dir, exist_ok=True)
        self.port = free_port()
        self.log_file = os.path.join(self.base_dir, "%s.log" % self.name)
        self.proc: Optional[subprocess.Popen] = None

    # -- what subclasses provide --------------------------------------
    def command(self) -> List[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """The tooz URL of this server."""
        raise NotImplementedError

    # -- life cycle ----------------------------------------------------
    def start(self, timeout: float = 60) -> "Server":
        """Start (again, on the same port and data) and wait until it
        answers."""
        why = missing(self.binary)
        if why:
            raise ServerUnavailable(why)
        if self.running():
            return self
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, start_new_session=True,
                close_fds=True, cwd=self.base_dir)
        if self not in _RUNNING:
            _RUNNING.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerUnavailable(
                    "%s exited with status %s during start-up; see %s:\n%s"
                    % (self.name, self.proc.returncode, self.log_file,
                       self.log_tail()))
            if self.ready():
                return self
            time.sleep(0.1)
        self.kill()
        raise ServerUnavailable("%s did not answer on 127.0.0.1:%d within "
                                "%ds; see %s" % (self.name, self.port,
                                                 timeout, self.log_file))

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig: int, wait: float) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s: the server is gone."""
        self._signal(signal.SIGTERM, 15)

    def kill(self) -> None:
        """SIGKILL: the server vanishes as in a crash."""
        self._signal(signal.SIGKILL, 30)

    def close(self) -> None:
        """Stop for good and delete its data."""
        self.stop()
        if self in _RUNNING:
            _RUNNING.remove(self)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_file, errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except OSError:
            return "(no log)"


class EtcdServer(Server):
    """A one-member etcd cluster on loopback (client and peer ports)."""

    name = "etcd"
    binary = ETCD

    def __init__(self, base_dir: Optional[str] = None) -> None:
        super().__init__(base_dir)
        self.peer_port = free_port()

    def command(self) -> List[str]:
        client = "http://127.0.0.1:%d" % self.port
        peer = "http://127.0.0.1:%d" % self.peer_port
        return [ETCD, "--name", "glance-ext-test",
                "--data-dir", os.path.join(self.base_dir, "data"),
                "--listen-client-urls", client,
                "--advertise-client-urls", client,
                "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "glance-ext-test=" + peer,
                "--initial-cluster-state", "new"]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                    "http://127.0.0.1:%d/health" % self.port,
                    timeout=2) as resp:
                return json.loads(resp.read().decode()).get(
                    "health") == "true"
        except (urllib.error.URLError, OSError, ValueError):
            return False

    @property
    def url(self) -> str:
        return "etcd3+http://127.0.0.1:%d" % self.port


class RedisServer(Server):
    """A redis-server without persistence on loopback."""

    name = "redis"
    binary = REDIS

    def command(self) -> List[str]:
        return [REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no",
                "--dir", self.base_dir, "--daemonize", "no",
                "--protected-mode", "no"]

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port),
                                          timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def url(self) -> str:
        return "redis://127.0.0.1:%d" % self.port


KINDS = {"etcd": EtcdServer, "redis": RedisServer}


def start(kind: str, base_dir: Optional[str] = None) -> Server:
    """A started server of ``kind`` ("etcd" or "redis")."""
    return KINDS[kind](base_dir).start()


def _stop_all() -> None:
    for server in list(_RUNNING):
        try:
            server.kill()
        except Exception:
            pass


atexit.register(_stop_all)
