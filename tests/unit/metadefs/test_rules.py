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

"""Compiled rules: what the API filter and validate-properties accept."""

import pytest

from glance_ext.metadefs import rules as rules_mod


@pytest.fixture(scope="module")
def ruleset(shipped_catalog):
    return rules_mod.compile_rules(shipped_catalog)


@pytest.mark.parametrize("key,value", [
    ("hw_disk_bus", "virtio"),
    ("hw_cpu_policy", "mixed"),
    ("hw_mem_encryption_model", "intel-tdx"),
    ("hw_qemu_guest_agent", "yes"),       # nova's docs spell it so
    ("hw_qemu_guest_agent", "False"),
    ("hw_cpu_cores", "4"),
    ("hw_numa_cpus.0", "0-3,^2"),
    ("hw_numa_cpus.127", "5"),            # any node number nova reads
    ("hw_numa_mem.9", "1024"),
    ("hw_mem_page_size", "1GiB"),
    ("img_hv_requested_version", ">=6.2,<9.0"),
    ("trait:HW_CPU_X86_AVX2", "required"),
    ("os_distro", "ubuntu22.04"),
    ("os_distro", "windows"),             # family name
    ("architecture", "aarch64"),          # legacy name
    ("auto_disk_config", "disabled"),
    ("img_block_device_mapping", "[{\"anything\": 1}]"),  # readonly
    ("my_own_property", "whatever"),      # unknown keys pass
    ("hw_numa_mem.128", "x"),             # beyond nova's 128 nodes: unknown
])
def test_accepted(ruleset, key, value):
    assert ruleset.check(key, value) is None


@pytest.mark.parametrize("key,value,expected", [
    ("hw_disk_bus", "foo", "allowed: one of fdc, ide, sata"),
    ("hw_cpu_policy", "bogus", "allowed: one of dedicated, shared, mixed"),
    ("hw_qemu_guest_agent", "ture", "allowed: true or false"),
    ("hw_cpu_cores", "two", "is not an integer; allowed: >= 1"),
    ("hw_cpu_cores", "0", "out of range; allowed: >= 1"),
    ("hw_redirected_usb_ports", "16", "allowed: 0 to 15"),
    ("hw_numa_cpus.3", "0-x", "does not match the pattern"),
    ("hw_numa_mem.0", "0", "out of range"),
    ("trait:HW_CPU_X86_AVX2", "forbidden", "allowed: one of required"),
    ("architecture", "amd64", "allowed: one of"),
    ("vm_mode", "pv", "allowed: one of hvm, xen, uml, exe"),
    ("hypervisor_type", "powervm", "allowed: one of"),
    ("auto_disk_config", "maybe", "true, false, disabled"),
])
def test_refused_with_a_message_naming_key_value_and_allowed(
        ruleset, key, value, expected):
    violation = ruleset.check(key, value)
    assert violation is not None
    assert "'%s'" % key in violation.message
    assert repr(value) in violation.message
    assert expected in violation.message


def test_long_enums_are_summarised_with_suggestions(ruleset):
    message = ruleset.check("os_distro", "ubuntu22.4").message
    assert "values listed in metadefs namespace GlanceExt::Nova::GuestOS" \
        in message
    assert "did you mean ubuntu22.04" in message
    assert len(message) < 400


def test_os_distro_is_advisory_by_default(shipped_catalog, ruleset):
    """A distribution newer than the catalog's osinfo-db is only advice."""
    violation = ruleset.check("os_distro", "debian13")
    assert violation.advisory
    strict = rules_mod.compile_rules(shipped_catalog, advisory=())
    assert not strict.check("os_distro", "debian13").advisory
    assert not ruleset.check("hw_disk_bus", "foo").advisory


def test_non_string_values_are_left_to_glance(ruleset):
    assert ruleset.check("hw_cpu_cores", 4) is None


def test_first_definition_wins_and_validate_lists_all(ruleset):
    found = ruleset.validate({"hw_disk_bus": "x", "hw_cpu_policy": "y",
                              "name": "n"})
    assert [v.key for v in found] == ["hw_disk_bus", "hw_cpu_policy"]


def test_allowed_text():
    rule = rules_mod.compile_rule("k", "ns", {"type": "integer",
                                              "minimum": 0, "maximum": 15})
    assert rule.allowed_text() == "integer 0 to 15"
    rule = rules_mod.compile_rule("k", "ns", {"type": "string",
                                              "enum": ["true", "false"]})
    assert rule.kind == "boolean"
