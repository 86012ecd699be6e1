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

"""The flavor and aggregate namespaces in a real glance-api.

What these tests prove, with real Glance 33 (gunicorn, its own for this
module) and the real ``glance-manage``:
- ``glance-manage db load_metadefs --path metadefs/`` loads the flavor and
  aggregate namespace files;
- ``GET /v2/metadefs/namespaces?resource_types=OS::Nova::Flavor`` (what
  Horizon's "Update Metadata" dialog on flavors asks) lists exactly the
  catalog's flavor namespaces, and the same for ``OS::Nova::Aggregate``;
- every one of them reads back with status 200 (Glance answers 500 for a
  namespace with an untitled property, shown here too), every property
  titled and equal to its file, and with ``resource_type`` applied Glance
  serves exactly the keys nova reads (prefixes included).
The tests do not depend on their order: each needs only the loaded
catalog, which the module fixture provides.
"""

import json
import os
import urllib.error
import urllib.parse
import urllib.request

import pytest

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import check
from glance_ext.metadefs import compare
from glance_ext.local_glance import client

CATALOG_DIR = catalog_mod.default_directory()
GLANCE_MANAGE = os.path.join(client.BIN_DIR, "glance-manage")
AGGREGATE = "OS::Nova::Aggregate"
OURS = "GlanceExt::Nova::"


def _load(glance, directory):
    conf = os.path.join(glance.state_dir, "etc", "glance-api.conf")
    proc = client.run([GLANCE_MANAGE, "--config-file", conf, "db",
                       "load_metadefs", "--path", directory])
    return proc.stdout + proc.stderr


def _get(glance, path):
    """(status, body) of one API GET; errors are answers, not exceptions."""
    req = urllib.request.Request(glance.url + path)
    req.add_header("X-Auth-Token", glance.token)
    req.add_header("Accept", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _listed(glance, resource_type):
    """Every namespace Glance lists for ``resource_type``, following pages."""
    names = []
    path = "/v2/metadefs/namespaces?" + urllib.parse.urlencode(
        {"resource_types": resource_type, "limit": 5})
    while path:
        status, body = _get(glance, path)
        assert status == 200, body
        names += [n["namespace"] for n in body["namespaces"]]
        path = body.get("next", "")
    return names


def _associated(catalog, resource_type):
    return sorted(d["namespace"] for d in catalog.documents
                  if resource_type in {a["name"] for a in
                                       d["resource_type_associations"]})


@pytest.fixture(scope="module")
def catalog():
    return catalog_mod.load_directory(CATALOG_DIR)


@pytest.fixture(scope="module")
def loaded(module_glance_factory):
    """This module's own Glance with the whole catalog loaded once."""
    glance = module_glance_factory()
    return glance, _load(glance, CATALOG_DIR)


def test_load_metadefs_loads_the_flavor_and_aggregate_files(loaded,
                                                            catalog):
    _, output = loaded
    flavor_files = [s for d, s in zip(catalog.documents, catalog.sources)
                    if catalog_mod.IMAGE not in {
                        a["name"] for a in d["resource_type_associations"]}]
    assert len(flavor_files) == 7
    for path in flavor_files:
        assert "File %s loaded to database" % path in output


@pytest.mark.parametrize("resource_type", [catalog_mod.FLAVOR, AGGREGATE])
def test_listing_by_resource_type_returns_exactly_ours(loaded, catalog,
                                                       resource_type):
    glance, _ = loaded
    listed = sorted(n for n in _listed(glance, resource_type)
                    if n.startswith(OURS))
    assert listed == _associated(catalog, resource_type)
    if resource_type == catalog_mod.FLAVOR:
        # the six flavor-only ones plus CPU, MemoryNUMA and Devices,
        # which flavors share with images
        assert len(listed) == 9


def test_every_flavor_namespace_reads_back_titled_and_equal(loaded,
                                                            catalog):
    glance, _ = loaded
    properties = 0
    for name in _listed(glance, catalog_mod.FLAVOR) + _listed(glance,
                                                              AGGREGATE):
        if not name.startswith(OURS):
            continue
        status, served = _get(glance, "/v2/metadefs/namespaces/" +
                              urllib.parse.quote(name, safe=""))
        assert status == 200, (name, served)
        for key, prop in served["properties"].items():
            assert prop.get("title"), (name, key)
            properties += 1
        assert compare.differences(catalog.document(name), served) == [], \
            name
    assert properties > 900


@pytest.mark.parametrize("resource_type", [catalog_mod.FLAVOR, AGGREGATE])
def test_glance_serves_the_keys_nova_reads(loaded, catalog, resource_type):
    """With resource_type, Glance prefixes names as Horizon shows them."""
    glance, _ = loaded
    served = set()
    for name in _associated(catalog, resource_type):
        status, body = _get(glance, "/v2/metadefs/namespaces/%s?%s" % (
            urllib.parse.quote(name, safe=""),
            urllib.parse.urlencode({"resource_type": resource_type})))
        assert status == 200, body
        served |= set(body["properties"])
    expected = {p.key for p in catalog.properties_for(resource_type)}
    assert served == expected
    if resource_type == catalog_mod.FLAVOR:
        assert {"hw:cpu_policy", "hw:cpu_realtime", "quota:cpu_shares",
                "resources:VGPU", "trait:HW_CPU_X86_AVX2", "group_policy",
                "capabilities:cpu_info:features", "hw_rng:allowed",
                "hw:numa_cpus.0"} <= served
    else:
        assert {"availability_zone", "filter_tenant_id",
                "ram_weight_multiplier", "trait:HW_CPU_X86_AVX2"} <= served


def test_an_untitled_property_makes_glance_answer_500(loaded, tmp_path):
    """Why every property needs a title: Glance's loader takes it, the API
    then fails for the whole namespace; `metadefs check` catches it."""
    glance, _ = loaded
    doc = {"namespace": "GlanceExt::Test::Untitled",
           "visibility": "public", "protected": True,
           "resource_type_associations": [{"name": catalog_mod.FLAVOR}],
           "properties": {"hw:x": {"type": "string"}}}
    (tmp_path / "untitled.json").write_text(json.dumps(doc))
    output = _load(glance, str(tmp_path))
    assert "loaded to database" in output
    status, _ = _get(glance, "/v2/metadefs/namespaces/" +
                     urllib.parse.quote(doc["namespace"], safe=""))
    assert status == 500
    problems = check.check_directory(str(tmp_path))
    assert any("no title" in p.message for p in problems)
