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

"""A host that cannot run the tools is never reported as a bad image.

Under uWSGI or mod_wsgi ``sys.executable`` is the server binary; without
Glance's ``[wsgi] python_interpreter`` every qemu-img call behind oslo's
prlimit wrapper would fail and each image would look broken. These tests
run the real plugins in a real taskflow engine (the image and the action
wrapper are the shared doubles: a real one needs Glance's database) with a
non-Python ``sys.executable``, a missing qemu-img and a missing qemu-nbd,
and prove that the import fails with a message naming the setting or the
package, and that nothing on the image says "rejected".
"""

import os
import shutil
import subprocess
import sys

import pytest
import taskflow.engines
from glance.common import config as glance_config  # noqa: F401 ([wsgi])
from glance.common import exception as glance_exception
from oslo_config import cfg
from taskflow.patterns import linear_flow as lf

from glance_ext.guest import options as guest_options
from glance_ext.inspection import options as validate_options
from glance_ext.plugins import convert
from glance_ext.plugins import inject
from glance_ext.plugins import validate
from glance_ext.qemu import runner
from glance_ext.testing.plugin_doubles import FakeActionWrapper, FakeImage

UWSGI = shutil.which("true")      # any binary that is not a Python


@pytest.fixture
def wsgi_conf():
    """Glance's CONF, with its ``[wsgi] python_interpreter`` (registered
    by glance.common.config, as in glance-api)."""
    yield cfg.CONF
    cfg.CONF.clear_override("python_interpreter", group="wsgi")


@pytest.fixture
def embedded(monkeypatch, wsgi_conf):
    """This process as uWSGI sees it: sys.executable is the server."""
    monkeypatch.setattr(sys, "executable", UWSGI)
    return wsgi_conf


def _qcow2(tmp_path):
    staged = tmp_path / "staging" / FakeImage("qcow2").image_id
    staged.parent.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(staged),
                    "4M"], check=True)
    return str(staged)


def _run(get_flow, staged, image):
    image.size = os.path.getsize(staged)    # image-stage records it
    flow = get_flow(task_id="t1", task_type="api_image_import",
                    action_wrapper=FakeActionWrapper(image), backend=["fs"],
                    import_req={"method": {"name": "glance-direct"}})
    with pytest.raises(glance_exception.UploadException) as err:
        taskflow.engines.run(lf.Flow("import").add(flow),
                             store={"file_path": "file://" + staged})
    return str(err.value)


def _nothing_says_rejected(image):
    assert image.status == "queued"
    assert image.extra_properties["os_glance_failed_import"] == "fs"
    values = " ".join("%s=%s" % kv for kv in image.extra_properties.items())
    assert "rejected" not in values, image.extra_properties


def test_interpreter_is_sys_executable_when_it_is_python(wsgi_conf):
    assert runner.interpreter() == sys.executable


def test_embedded_interpreter_names_the_setting(embedded):
    with pytest.raises(runner.InterpreterUnusable) as err:
        runner.interpreter()
    text = str(err.value)
    assert "[wsgi] python_interpreter" in text
    assert UWSGI in text and "not a Python interpreter" in text


def test_configured_interpreter_is_followed(embedded):
    embedded.set_override("python_interpreter", shutil.which("python3"),
                          group="wsgi")
    assert runner.interpreter() == shutil.which("python3")
    embedded.set_override("python_interpreter", "/nonexistent/python",
                          group="wsgi")
    with pytest.raises(runner.InterpreterUnusable) as err:
        runner.interpreter()
    assert "/nonexistent/python" in str(err.value)
    assert "python_interpreter names no executable" in str(err.value)


def test_validate_under_uwsgi_fails_the_import_not_the_image(
        embedded, tmp_path, monkeypatch):
    conf = cfg.ConfigOpts()
    validate_options.register_opts(conf)
    conf(args=[], default_config_files=[], default_config_dirs=[])
    monkeypatch.setattr(validate, "CONF", conf)
    image = FakeImage("qcow2")
    message = _run(validate.get_flow, _qcow2(tmp_path), image)
    assert "cannot run on this Glance host" in message
    assert "[wsgi] python_interpreter" in message
    assert "rejected" not in message
    _nothing_says_rejected(image)


def test_validate_without_qemu_img_names_the_package(
        wsgi_conf, tmp_path, monkeypatch):
    conf = cfg.ConfigOpts()
    validate_options.register_opts(conf)
    conf(args=[], default_config_files=[], default_config_dirs=[])
    conf.set_override("qemu_img", "/nonexistent/qemu-img",
                      group=validate_options.GROUP)
    monkeypatch.setattr(validate, "CONF", conf)
    image = FakeImage("qcow2")
    message = _run(validate.get_flow, _qcow2(tmp_path), image)
    assert "cannot run on this Glance host" in message
    assert "qemu-utils" in message
    _nothing_says_rejected(image)


def test_convert_under_uwsgi_names_the_setting(embedded, tmp_path):
    cfg.CONF.set_override("lock_dir", str(tmp_path / "slots"),
                          group="glance_ext_convert")
    cfg.CONF.set_override("free_space_reserve_mb", 0,
                          group="glance_ext_convert")
    try:
        image = FakeImage("qcow2")
        message = _run(convert.get_flow, _qcow2(tmp_path), image)
    finally:
        cfg.CONF.clear_override("lock_dir", group="glance_ext_convert")
        cfg.CONF.clear_override("free_space_reserve_mb",
                                group="glance_ext_convert")
    assert "cannot run on this Glance host" in message
    assert "[wsgi] python_interpreter" in message
    _nothing_says_rejected(image)


def test_inject_without_qemu_nbd_names_the_package(wsgi_conf, tmp_path):
    guest_options.register_opts(cfg.CONF)
    cfg.CONF.set_override("qemu_nbd", "/nonexistent/qemu-nbd",
                          group=guest_options.GROUP)
    cfg.CONF.set_override("require_inspection", False,
                          group="glance_ext_inject")
    try:
        image = FakeImage("qcow2")
        message = _run(inject.get_flow, _qcow2(tmp_path), image)
    finally:
        cfg.CONF.clear_override("qemu_nbd", group=guest_options.GROUP)
        cfg.CONF.clear_override("require_inspection",
                                group="glance_ext_inject")
    assert "glance_ext_inject cannot run on this Glance host" in message
    assert "qemu_nbd" in message and "qemu-utils" in message
    _nothing_says_rejected(image)
