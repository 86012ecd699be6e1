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

"""schema-image.json derived from the catalog, as Glance's jsonschema sees it."""

import json

import jsonschema
import pytest

from glance_ext.metadefs import schema_image


@pytest.fixture(scope="module")
def validator(shipped_catalog):
    return jsonschema.Draft4Validator(
        {"type": "object", "properties": schema_image.build(shipped_catalog)})


@pytest.mark.parametrize("props", [
    {"hw_disk_bus": "virtio", "hw_cpu_policy": "mixed"},
    {"hw_qemu_guest_agent": "YES", "hw_cpu_cores": "4"},
    {"hw_numa_cpus.0": "0-1", "hw_numa_mem.0": "512"},
    {"trait:HW_CPU_X86_AVX2": "required", "os_distro": "debian11"},
    {"img_bdm_v2": "anything"},   # readonly: not constrained
])
def test_valid(validator, props):
    assert list(validator.iter_errors(props)) == []


@pytest.mark.parametrize("props", [
    {"hw_disk_bus": "foo"}, {"hw_cpu_policy": "bogus"},
    {"hw_qemu_guest_agent": "ture"}, {"hw_cpu_cores": "two"},
    {"hw_numa_cpus.1": "0-x"}, {"trait:HW_CPU_X86_AVX2": "forbidden"},
])
def test_invalid(validator, props):
    assert list(validator.iter_errors(props)) != []


def test_readonly_left_out_and_file_written(shipped_catalog, tmp_path):
    built = schema_image.build(shipped_catalog)
    assert "img_block_device_mapping" not in built
    assert "block_device_mapping" not in built
    path = tmp_path / "schema-image.json"
    count = schema_image.write(shipped_catalog, str(path))
    assert count == len(built)
    assert json.loads(path.read_text()) == built
    assert all(v["type"] == "string" for v in built.values())
