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

"""Missing prerequisites give an error that names the fix.

qemu-img is hidden by running the real command with an empty PATH; the
absence of gunicorn and of the PostgreSQL binaries cannot be arranged
without uninstalling them, so those two lookups are monkeypatched.
"""

import os
import subprocess
import sys

import pytest

from glance_ext.local_glance import errors
from glance_ext.local_glance import postgres
from glance_ext.local_glance import service

GLANCE_EXT = os.path.join(os.path.dirname(sys.executable), "glance-ext")


def test_missing_qemu_img_names_the_package(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = subprocess.run(
        [GLANCE_EXT, "local-glance", "up", "--state-dir",
         str(tmp_path / "s")],
        env=dict(os.environ, PATH=str(empty)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert "qemu-img not found" in proc.stderr
    assert "qemu-utils" in proc.stderr
    assert not (tmp_path / "s" / "state.json").exists()


def test_missing_gunicorn_says_how_to_install(monkeypatch):
    real = service.importlib.util.find_spec
    monkeypatch.setattr(service.importlib.util, "find_spec",
                        lambda name: None if name == "gunicorn"
                        else real(name))
    with pytest.raises(errors.LocalGlanceError,
                       match="pip install gunicorn"):
        service.check_prerequisites()


def test_missing_postgresql_says_how_to_install(monkeypatch):
    monkeypatch.setattr(postgres.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(postgres.shutil, "which", lambda name: None)
    with pytest.raises(errors.LocalGlanceError,
                       match="apt-get install -y postgresql"):
        postgres.find_bin_dir()
