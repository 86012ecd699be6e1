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

from glance_ext.local_glance import client


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
