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

"""The catalog in a real glance-api: loaded, served back, enforced.

What these tests prove, with real Glance 33 (gunicorn), the real
``glance-manage`` and the real ``glance`` CLI:
- ``glance-manage db load_metadefs --path metadefs/`` loads every namespace
  and ``GET /v2/metadefs/namespaces/<ns>`` serves each one back equal to
  its file;
- glance_ext.middleware, inserted into the real paste pipeline after
  Glance's context filter, refuses ``hw_disk_bus=foo`` on create and
  ``hw_cpu_policy=bogus`` on update with a 400 naming property, value and
  allowed values, and lets valid values through to Glance;
- a catalog loaded while glance-api runs is enforced within the refresh
  interval, without a restart;
- ``glance-ext metadefs schema-image`` output is enforced by Glance itself.
"""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import compare
from glance_ext.local_glance import client

CATALOG_DIR = catalog_mod.default_directory()
GLANCE_MANAGE = os.path.join(client.BIN_DIR, "glance-manage")
FILTER = "glance_ext.middleware:filter_factory"
FAST_REFRESH = {"glance_ext_metadefs.refresh_interval": "1"}


def load_metadefs(glance):
    conf = os.path.join(glance.state_dir, "etc", "glance-api.conf")
    return client.run([GLANCE_MANAGE, "--config-file", conf, "db",
                       "load_metadefs", "--path", CATALOG_DIR])


def http(glance, method, path, body=None, content_type="application/json"):
    """One raw API call; returns (status, text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(glance.url + path, data=data, method=method)
    req.add_header("X-Auth-Token", glance.token)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class _Loader(object):
    """Loads the catalog into the module's Glance once, remembering it."""

    def __init__(self, glance):
        self.glance = glance
        self.output = None

    def __call__(self):
        if self.output is None:
            proc = load_metadefs(self.glance)
            self.output = proc.stdout + proc.stderr
        return self.glance


@pytest.fixture(scope="module")
def loader(module_glance_factory):
    """One Glance with the filter in its pipeline, catalog not loaded yet."""
    return _Loader(module_glance_factory(paste_filters=[FILTER],
                                         api_options=FAST_REFRESH))


@pytest.fixture
def loaded_glance(loader):
    return loader()


def test_catalog_loaded_while_running_applies_without_restart(
        local_glance_factory):
    # A Glance of its own: it must start without the catalog, whatever
    # the other tests of the module did first.
    loader = _Loader(local_glance_factory(paste_filters=[FILTER],
                                          api_options=FAST_REFRESH))
    glance = loader.glance
    before = glance.glance("image-create", "--name", "before",
                           "--property", "hw_disk_bus=foo", check=False)
    assert before.returncode == 0, "nothing loaded yet: nothing to enforce"
    pid = glance.pid
    loader()
    deadline = time.monotonic() + 20
    while True:
        status, text = http(glance, "POST", "/v2/images",
                            {"name": "after", "hw_disk_bus": "foo"})
        if status == 400 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 400, text
    assert "'hw_disk_bus'" in text
    assert glance.pid == pid


def test_every_namespace_loads_and_reads_back_equal(loaded_glance, loader):
    catalog = catalog_mod.load_directory(CATALOG_DIR)
    for path in catalog.sources:
        assert "File %s loaded to database" % path in loader.output
    listed = loaded_glance.glance("md-namespace-list").stdout
    for doc in catalog.documents:
        assert doc["namespace"] in listed
        served = loaded_glance.api("/v2/metadefs/namespaces/" +
                                   urllib.parse.quote(doc["namespace"],
                                                      safe=""))
        assert compare.differences(doc, served) == [], doc["namespace"]


def test_cli_create_with_bad_disk_bus_is_refused(loaded_glance):
    proc = loaded_glance.glance("image-create", "--name", "bad-bus",
                                "--property", "hw_disk_bus=foo", check=False)
    assert proc.returncode != 0
    err = proc.stderr + proc.stdout
    assert "HTTP 400" in err
    assert "Invalid value 'foo' for image property 'hw_disk_bus'" in err
    assert "virtio" in err
    assert "bad-bus" not in loaded_glance.glance("image-list").stdout


def test_cli_update_bad_cpu_policy_refused_valid_values_stored(
        loaded_glance):
    created = client.parse_table(loaded_glance.glance(
        "image-create", "--name", "good", "--property", "hw_disk_bus=virtio",
        "--property", "hw_qemu_guest_agent=yes").stdout)
    image_id = created["id"]
    assert created["hw_disk_bus"] == "virtio"

    proc = loaded_glance.glance("image-update", image_id, "--property",
                                "hw_cpu_policy=bogus", check=False)
    assert proc.returncode != 0
    err = proc.stderr + proc.stdout
    assert "HTTP 400" in err
    assert ("Invalid value 'bogus' for image property 'hw_cpu_policy': it "
            "is not allowed; allowed: one of dedicated, shared, mixed") in err

    loaded_glance.glance("image-update", image_id,
                         "--property", "hw_cpu_policy=mixed",
                         "--property", "hw_numa_nodes=2",
                         "--property", "hw_numa_cpus.1=2-3",
                         "--property", "trait:HW_CPU_X86_AVX2=required",
                         "--property", "site_custom_key=anything")
    image = loaded_glance.image(image_id)
    assert image["hw_cpu_policy"] == "mixed"
    assert image["hw_numa_cpus.1"] == "2-3"
    assert image["trait:HW_CPU_X86_AVX2"] == "required"
    assert image["site_custom_key"] == "anything"
    assert "hw_numa_mem" not in json.dumps(image)


def test_raw_patch_names_every_bad_property(loaded_glance):
    status, text = http(loaded_glance, "POST", "/v2/images",
                        {"name": "raw", "hw_vif_model": "virtoi",
                         "hw_cpu_cores": "0"})
    assert status == 400
    assert "did you mean virtio?" in text
    assert "'hw_cpu_cores': it is out of range; allowed: >= 1" in text


def test_schema_image_is_enforced_by_glance(tmp_path):
    """Glance reads schema-image.json from its config dir at start-up."""
    state_dir = str(tmp_path / "glance")
    os.makedirs(os.path.join(state_dir, "etc"))
    client.run([client.GLANCE_EXT, "metadefs", "schema-image", "-o",
                os.path.join(state_dir, "etc", "schema-image.json")])
    glance = client.start_local_glance(state_dir)
    try:
        status, text = http(glance, "POST", "/v2/images",
                            {"name": "s", "hw_disk_bus": "foo"})
        assert status == 400
        assert "'foo' is not one of" in text
        status, text = http(glance, "POST", "/v2/images",
                            {"name": "s", "hw_disk_bus": "virtio",
                             "hw_qemu_guest_agent": "YES",
                             "hw_cpu_cores": "2"})
        assert status == 201, text
        image_id = json.loads(text)["id"]
        status, text = http(
            glance, "PATCH", "/v2/images/" + image_id,
            [{"op": "add", "path": "/hw_cpu_policy", "value": "bogus"}],
            content_type="application/openstack-images-v2.1-json-patch")
        assert status == 400
        assert "'bogus' is not one of" in text
    finally:
        glance.down()
