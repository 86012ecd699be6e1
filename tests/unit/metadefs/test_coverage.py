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

"""The catalog against the installed nova 34: fails on any drift.

These tests need nova (test-requirements.txt); they fail, rather than
skip, without it, because the catalog's exactness is the point.
"""

import pytest

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import coverage
from glance_ext.metadefs import exclusions


@pytest.fixture(scope="module")
def report(shipped_catalog):
    return coverage.run(shipped_catalog)


def test_every_nova_field_is_covered_or_excluded(report):
    bad = ["%s %s %s: %s" % (r.kind, r.name, r.status, r.detail)
           for r in report.results if not r.ok]
    assert bad == []
    assert report.covered == report.total == 86
    assert report.object_version == "1.44"


def test_values_really_went_through_nova(report):
    by_name = {r.name: r for r in report.results if r.kind == "field"}
    # 9 bus names + 2 forbidden samples
    assert by_name["hw_disk_bus"].checked == 11
    assert by_name["traits_required"].checked > 300
    assert by_name["os_distro"].checked > 800
    assert sum(r.checked for r in report.results) > 1500


def test_legacy_and_flavor_keys_checked(report):
    legacy = {r.name: r for r in report.results if r.kind == "legacy"}
    for name in exclusions.REQUIRED_LEGACY_NAMES:
        assert legacy[name].status == "covered"
    # flavor results are named by nova's validator (name template)
    flavor = {r.name for r in report.results if r.kind == "flavor"}
    assert {"hw:cpu_policy", "hw:numa_cpus.{num}", "hw:mem_page_size",
            "hw:watchdog_action"} <= flavor


def _mutated(directory, edit, flavor=True):
    return coverage.run(catalog_mod.load_directory(directory), flavor=flavor)


def _problems(report):
    return {(r.kind, r.name): " ".join(r.detail) for r in report.results
            if not r.ok}


def test_stale_enum_is_drift(catalog_copy):
    directory, edit = catalog_copy
    edit("nova-cpu.json", lambda d: d["properties"]["cpu_policy"]["enum"]
         .remove("mixed"))
    problems = _problems(_mutated(directory, edit))
    assert "missing ['mixed']" in problems[("field", "hw_cpu_policy")]
    assert ("flavor", "hw:cpu_policy") in problems


def test_value_nova_refuses_is_drift(catalog_copy):
    directory, edit = catalog_copy
    edit("nova-legacy-names.json", lambda d: d["properties"][
        "hypervisor_type"]["enum"].append("powervm"))
    problems = _problems(_mutated(directory, edit, flavor=False))
    assert "nova refuses hypervisor_type='powervm'" in \
        problems[("legacy", "hypervisor_type")]


def test_missing_field_and_wrong_type_are_reported(catalog_copy):
    directory, edit = catalog_copy

    def change(doc):
        del doc["properties"]["hw_scsi_model"]
        doc["properties"]["hw_video_ram"]["type"] = "string"
    edit("nova-image-hardware.json", change)
    report = _mutated(directory, edit, flavor=False)
    problems = _problems(report)
    assert problems[("field", "hw_scsi_model")] == \
        "not described for OS::Glance::Image"
    assert "expects integer" in problems[("field", "hw_video_ram")]
    assert report.covered == 84


def test_flavor_range_and_readonly_drift(catalog_copy):
    directory, edit = catalog_copy
    edit("nova-devices.json", lambda d: d["properties"][
        "redirected_usb_ports"].__setitem__("maximum", 16))
    edit("nova-image-handling.json", lambda d: d["properties"][
        "img_bdm_v2"].pop("readonly"))
    problems = _problems(_mutated(directory, edit))
    assert "maximum 16, nova's extra spec has 15" in \
        problems[("flavor", "hw:redirected_usb_ports")]
    assert "mark it \"readonly\"" in problems[("field", "img_bdm_v2")]


def test_excluded_field_must_not_be_described(catalog_copy):
    directory, edit = catalog_copy
    edit("nova-image-hardware.json", lambda d: d["properties"].__setitem__(
        "hw_rng_model", {"title": "RNG", "type": "string",
                         "enum": ["virtio"]}))
    problems = _problems(_mutated(directory, edit, flavor=False))
    assert "excluded but also in the catalog" in \
        problems[("field", "hw_rng_model")]


def test_traits_must_be_complete(catalog_copy):
    directory, edit = catalog_copy
    edit("nova-traits.json", lambda d: d["properties"].pop(
        "HW_CPU_X86_AVX2"))
    problems = _problems(_mutated(directory, edit, flavor=False))
    assert "trait:HW_CPU_X86_AVX2" in problems[("field", "traits_required")]
