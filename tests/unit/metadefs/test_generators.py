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

"""Generated catalog parts equal their generators' output (no drift)."""

import os

import pytest

from glance_ext import testing
from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import generators

CATALOG_DIR = catalog_mod.default_directory()


def _committed_osinfo_version():
    doc = catalog_mod.load_document(os.path.join(
        CATALOG_DIR, generators.GUEST_OS_FILE))
    text = doc["properties"]["os_distro"]["description"]
    return text.split("Generated from osinfo-db ", 1)[1].split(" ", 1)[0]


def test_os_distro_list_equals_osinfo_db():
    if not os.path.isdir(os.path.join(generators.OSINFO_DIR, "os")):
        testing.needs("osinfo-db not installed (apt-get install osinfo-db)")
    installed = generators.osinfo_version()
    committed = _committed_osinfo_version()
    if installed != committed:
        pytest.skip("installed osinfo-db %s, catalog generated from %s: run "
                    "tools/generate_os_distro_ids.py" % (installed,
                                                         committed))
    assert generators.write_os_distro(CATALOG_DIR, check_only=True) is None


def test_traits_namespace_equals_os_traits():
    assert generators.write_traits(CATALOG_DIR, check_only=True) is None


def test_osinfo_parser_on_a_generated_tree(tmp_path):
    vendor = tmp_path / "os" / "example.org"
    vendor.mkdir(parents=True)
    (vendor / "exos-1.xml").write_text(
        '<libosinfo version="0.0.1"><os id="http://example.org/exos/1">'
        '<short-id>exos1</short-id><short-id>exos-latest</short-id>'
        '<name>ExOS 1</name></os></libosinfo>')
    (vendor / "exos-2.xml").write_text(
        '<libosinfo version="0.0.1"><os id="http://example.org/exos/2">'
        '<short-id> exos2 </short-id></os></libosinfo>')
    assert generators.osinfo_short_ids(str(tmp_path)) == [
        "exos-latest", "exos1", "exos2"]
    values = generators.os_distro_values(["exos1"])
    assert "exos1" in values and "ubuntu" in values


def test_osinfo_missing_gives_an_actionable_error(tmp_path):
    with pytest.raises(generators.GeneratorError,
                       match="apt-get install osinfo-db"):
        generators.osinfo_short_ids(str(tmp_path))


def test_drift_is_detected(tmp_path):
    import shutil
    target = str(tmp_path / "metadefs")
    shutil.copytree(CATALOG_DIR, target)
    path = os.path.join(target, generators.TRAITS_FILE)
    doc = catalog_mod.load_document(path)
    doc["properties"].pop(sorted(doc["properties"])[0])
    generators.dump_document(doc, path)
    assert "differs from the installed os-traits" in \
        generators.write_traits(target, check_only=True)
