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

"""The package inventory, SBOM and os_eol policy inside a real glance-api.

What this proves, through the real glance CLI and API, with
``[glance_ext_inject] sbom_dir`` set and ``os_eol_policy = enforce``:
* a RHEL 9 (rpm SQLite), Debian 12 (the build machine's real dpkg status)
  and Windows Server 2022 image each end ``active`` with
  ``glance_ext_inject_packages``, the kernel and the SBOM's sha256 set, and
  ``<sbom_dir>/<image id>.cdx.json`` is a CycloneDX document that the
  CycloneDX library's schema validator accepts, whose sha256 is the
  property and whose components are the image's packages;
* a CentOS 7 image (BerkeleyDB rpmdb; end of life 2024-06-30 in
  osinfo-db) is rejected: ``queued``, the date in the task message and in
  ``glance_ext_inject_reason``, and no SBOM left behind.
"""

import hashlib
import json
import os

import pytest

from glance_ext import testing
from glance_ext.guest import sbom
from glance_ext.testing.guest import disks
from glance_ext.testing.guest import pkgdb

PLUGINS = ["glance_ext_validate", "glance_ext_inject"]


@pytest.fixture(scope="module", autouse=True)
def need_tools():
    missing = disks.tool_missing() or pkgdb.rpm_missing()
    if not os.path.isdir("/usr/share/osinfo/os"):
        missing = missing or "osinfo-db"
    if missing:
        testing.needs("needs %s (tools/install-system-deps.sh --test)"
                      % missing)


@pytest.fixture(scope="module")
def sbom_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sboms")


@pytest.fixture(scope="module")
def glance(module_glance_factory, sbom_dir):
    return module_glance_factory(plugins=PLUGINS, import_options={
        "glance_ext_inject.sbom_dir": str(sbom_dir),
        "glance_ext_inject.os_eol_policy": "enforce"})


def _sbom(sbom_dir, image_id):
    path = sbom_dir / (image_id + ".cdx.json")
    assert path.exists(), sorted(os.listdir(sbom_dir))
    text = path.read_text()
    assert sbom.validate(text) is None
    return text, json.loads(text)


@pytest.mark.parametrize("name,container,count,kernel", [
    ("rhel-lvm", "qcow2", "6", "5.14.0-162.6.1.el9_1.x86_64"),
    ("debian-mbr", "raw", None, "6.1.0-18-amd64"),
    ("win2k22-gpt", "qcow2", "3", None),
])
def test_import_writes_a_valid_sbom(glance, sbom_dir, name, container,
                                    count, kernel):
    path = disks.image(disks.SPECS[name], container)
    image_id = glance.import_file(path, disks.disk_format_of(container),
                                  name=name)
    image = glance.wait_import(image_id)
    assert image["status"] == "active", (image, glance.log_tail(100))
    if count is None:
        host = pkgdb.host_dpkg_status()
        count = str(len(pkgdb.dpkg_query(os.path.dirname(host)))) \
            if host else "4"
    assert image["glance_ext_inject_packages"] == count
    assert image.get("glance_ext_inject_kernel") == kernel
    text, doc = _sbom(sbom_dir, image_id)
    assert image["glance_ext_inject_sbom_sha256"] == \
        hashlib.sha256(text.encode()).hexdigest()
    assert len(doc["components"]) == int(count)
    props = {p["name"]: p["value"]
             for p in doc["metadata"]["component"]["properties"]}
    assert props["glance_ext:image_id"] == image_id
    assert image["glance_ext_inject_check_os_eol"] in ("pass", "unknown")


def test_end_of_life_image_rejected_with_the_date(glance, sbom_dir):
    path = disks.image(disks.SPECS["centos7-bdb"], "qcow2")
    image_id = glance.import_file(path, "qcow2", name="centos7")
    image = glance.wait_import(image_id)
    assert image["status"] == "queued", image
    assert image.get("os_glance_failed_import") == "fs"
    messages = [t["Message"] for t in glance.tasks(image_id)]
    assert any(m.startswith("Image rejected by glance_ext_inject: os_eol: "
                            "centos7 reached its end of life on 2024-06-30")
               for m in messages), messages
    assert image["glance_ext_inject_os_eol"] == "2024-06-30"
    assert image["glance_ext_inject_check_os_eol"] == "fail"
    assert "2024-06-30" in image["glance_ext_inject_reason"]
    assert not (sbom_dir / (image_id + ".cdx.json")).exists()
    assert glance.staged_file_gone(image_id)
