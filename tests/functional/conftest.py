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

"""Fixtures that start the real services for functional tests."""

import os

import pytest

from glance_ext import testing
from glance_ext.local_glance import client
from glance_ext.testing import servers


class _Factory(object):
    def __init__(self, base_dir: str) -> None:
        self.base_dir = base_dir
        self.state_dirs = []
        self.started = []

    def __call__(self, **kwargs) -> client.LocalGlance:
        state_dir = os.path.join(self.base_dir,
                                 "glance-%d" % len(self.state_dirs))
        # Recorded before `up`: whatever happens after it started a server
        # (even output we fail to parse), teardown stops it.
        self.state_dirs.append(state_dir)
        glance = client.start_local_glance(state_dir, **kwargs)
        self.started.append(glance)
        return glance

    def stop_all(self) -> None:
        failures = []
        for state_dir in self.state_dirs:
            proc = client.run([client.GLANCE_EXT, "local-glance", "down",
                               "--state-dir", state_dir], check=False)
            if proc.returncode != 0:  # keep stopping the others
                failures.append(proc.stderr)
        assert not failures, failures


@pytest.fixture
def local_glance_factory(tmp_path):
    """Start local Glances for one test; all are stopped afterwards."""
    factory = _Factory(str(tmp_path))
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def module_glance_factory(tmp_path_factory):
    """Like local_glance_factory, shared by the tests of one module."""
    factory = _Factory(str(tmp_path_factory.mktemp("glance")))
    yield factory
    factory.stop_all()


@pytest.fixture
def http_server(tmp_path):
    """A loopback HTTP server for web-download, serving ``.directory``."""
    root = tmp_path / "www"
    root.mkdir()
    server = client.HTTPServer(str(root))
    yield server
    server.close()


@pytest.fixture(scope="module")
def module_http_server(tmp_path_factory):
    server = client.HTTPServer(str(tmp_path_factory.mktemp("www")))
    yield server
    server.close()


def _server(kind: str, base_dir: str) -> servers.Server:
    """A started etcd or redis; the binary missing fails under CI."""
    testing.needs(servers.missing(servers.KINDS[kind].binary))
    return servers.start(kind, base_dir)


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory):
    """A real etcd (Debian's etcd-server) for the session, on its own
    loopback port."""
    server = _server("etcd", str(tmp_path_factory.mktemp("etcd")))
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server for the session, on its own loopback port."""
    server = _server("redis", str(tmp_path_factory.mktemp("redis")))
    yield server
    server.close()


class _Servers(object):
    """Servers of a test's own, for tests that stop them mid-run."""

    def __init__(self, base_dir: str) -> None:
        self.base_dir = base_dir
        self.started = []

    def __call__(self, kind: str) -> servers.Server:
        server = _server(kind, os.path.join(
            self.base_dir, "%s-%d" % (kind, len(self.started))))
        self.started.append(server)
        return server

    def close(self) -> None:
        for server in self.started:
            server.close()


@pytest.fixture
def server_factory(tmp_path):
    """``server_factory("etcd"|"redis")``: a server of the test's own,
    stopped and deleted afterwards."""
    factory = _Servers(str(tmp_path / "servers"))
    yield factory
    factory.close()
