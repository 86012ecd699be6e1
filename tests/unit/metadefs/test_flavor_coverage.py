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

"""The flavor and aggregate catalog against the installed nova 34.

Like test_coverage, these fail (never skip) without nova: they are how the
suite fails the day nova's extra-spec validators and the catalog disagree.
The values below go to nova's own ``validators.validate()`` (what the
flavor API calls); nothing of nova is replaced, except in the tests that
simulate a future nova by editing its validator registry in memory
(monkeypatch restores it).
"""

import copy
import re

import pytest

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import exclusions
from glance_ext.metadefs import extra_specs
from glance_ext.metadefs import flavor_coverage
from glance_ext.metadefs import flavor_generator
from glance_ext.metadefs import nova_data

CATALOG_DIR = catalog_mod.default_directory()


@pytest.fixture(scope="module")
def nova():
    return nova_data.FlavorNova()


@pytest.fixture(scope="module")
def results(shipped_catalog):
    return flavor_coverage.run(shipped_catalog)


@pytest.fixture(scope="module")
def flavor_rules(shipped_catalog):
    return extra_specs.FlavorRules(shipped_catalog)


def _problems(results):
    return {(r.kind, r.name): " ".join(r.detail) for r in results
            if not r.ok}


def test_every_nova_validator_is_described_or_excluded(results, nova):
    specs = {r.name: r for r in results if r.kind == "flavor"}
    assert set(specs) == set(nova.validators.VALIDATORS)
    assert len(specs) == 525  # nova 34.0.0
    assert _problems(results) == {}
    not_deprecated = [r for r in specs.values() if not r.deprecated]
    assert len(not_deprecated) == 524
    assert all(r.status in ("covered", "excluded") for r in not_deprecated)
    excluded = {n for n, r in specs.items() if r.status == "excluded"}
    assert excluded == set(exclusions.EXCLUDED_EXTRA_SPECS)
    for name in excluded:
        assert len(specs[name].detail[0]) > 40, name  # a reason, not a tag
    # the deprecated one is described, and marked
    assert specs["hide_hypervisor_id"].status == "covered"
    assert sum(r.checked for r in specs.values()) > 4000


def test_deprecated_spec_is_marked(shipped_catalog, nova):
    props = {p.key: p.schema for p in
             shipped_catalog.properties_for(catalog_mod.FLAVOR)}
    for validator in nova.all_validators():
        if validator.name in exclusions.EXCLUDED_EXTRA_SPECS:
            continue
        key = flavor_generator.catalog_names(validator)[0]
        assert extra_specs.is_marked_deprecated(props[key]) == \
            validator.deprecated, key
    assert props["hide_hypervisor_id"]["title"].endswith("(deprecated)")


def test_every_enum_value_is_accepted_by_nova(shipped_catalog, nova):
    """Straight to nova's validate(), without the coverage machinery."""
    fed = 0
    for prop in shipped_catalog.properties_for(catalog_mod.FLAVOR):
        for value in prop.schema.get("enum") or ():
            assert nova.validate(prop.key, value) is None, (prop.key, value)
            fed += 1
    # 377 traits x 2, the hw: enums and booleans, group_policy, quotas...
    assert fed > 800


# (key, value): nova's flavor API refuses each, and so must the catalog.
WRONG = [
    ("hw:cpu_policy", "bogus"),
    ("hw:cpu_policy", "Dedicated"),
    ("hw:cpu_thread_policy", "prefer "),
    ("hw:numa_nodes", "0"),
    ("hw:numa_mem.3", "one"),
    ("hw:numa_cpus.12", "0-x"),
    ("hw:redirected_usb_ports", "16"),
    ("hw:mem_page_size", "huge"),
    ("hw:cpu_realtime", "maybe"),
    ("hw:cpu_dedicated_mask", "all"),
    ("hw:emulator_threads_policy", "dedicated"),
    ("hw:pmem", "6 GB"),
    ("hw:tpm_secret_security", "owner"),
    ("hw_rng:allowed", "maybe"),
    ("hw_rng:rate_bytes", "-1"),
    ("hw_video:ram_max_mb", "64MB"),
    ("os:secure_boot", "optional"),  # images only
    ("pci_passthrough:alias", "gpu"),
    ("group_policy", "strict"),
    ("resources:VCPU", "two"),
    ("resources_gpu:VGPU", "1.5"),
    ("trait:HW_CPU_X86_AVX2", "preferred"),
    ("trait1:HW_CPU_X86_AVX2", "Required"),
    ("quota:cpu_shares", "-1"),
    ("quota:cpu_limit", "lots"),
    ("quota:disk_io_shares_level", "medium"),
    ("quota:vif_outbound_burst", "-2"),
    ("hide_hypervisor_id", "maybe"),
]
# Accepted by nova and by the catalog, including parameterised names.
RIGHT = [
    ("hw:cpu_policy", "mixed"),
    ("hw:numa_mem.12", "1024"),
    ("hw:numa_cpus.1", "2-3,^2"),
    ("hw:cpu_realtime", "yes"),
    ("resources1:VCPU", "2"),
    ("resources_gpu-a:VGPU", "1"),
    ("resources:VCPU", "0"),
    ("trait_x:HW_CPU_X86_AVX2", "forbidden"),
    ("capabilities:cpu_info:features", "<all-in> aes avx2"),
    ("capabilities:stats:custom", "s== x"),
    ("capabilities:hypervisor_type", "s== QEMU"),
    ("quota:cpu_quota", "-1"),
    ("os:secure_boot", "required"),
    ("pci_passthrough:alias", "a1:2, gpu:1"),
]


@pytest.mark.parametrize("key,value", WRONG)
def test_wrong_value_refused_by_nova_and_catalog(nova, flavor_rules, key,
                                                 value):
    assert nova.validate(key, value) is not None, "nova accepts it"
    assert flavor_rules.rule_for(key) is not None, "catalog lacks %s" % key
    assert flavor_rules.check(key, value) is not None, "catalog accepts it"


@pytest.mark.parametrize("key,value", RIGHT)
def test_right_value_accepted_by_nova_and_catalog(nova, flavor_rules, key,
                                                  value):
    assert nova.validate(key, value) is None
    assert flavor_rules.rule_for(key) is not None, "catalog lacks %s" % key
    assert flavor_rules.check(key, value) is None


def test_image_property_and_flavor_twin_agree(shipped_catalog, nova,
                                              results):
    """One source for both: a twin is one property, or equal constraints."""
    image = {p.key: p for p in
             shipped_catalog.properties_for(catalog_mod.IMAGE)}
    flavor = {p.key: p for p in
              shipped_catalog.properties_for(catalog_mod.FLAVOR)}
    twins = 0
    for validator in nova.all_validators():
        field = flavor_generator.image_twin(nova, validator)
        if field is None:
            continue
        twins += 1
        suffix = ".0" if "{num}" in validator.name else ""
        ikey, fkey = field + suffix, flavor_generator.catalog_names(
            validator)[0]
        iconst = extra_specs.constraints_of(image[ikey].schema)
        fconst = extra_specs.constraints_of(flavor[fkey].schema)
        if field in flavor_generator.IMAGE_WIDER_THAN_FLAVOR:
            # nova: images also take 'optional', flavors do not
            assert iconst["enum"] == nova.image_enum(field)
            assert fconst["enum"] == list(validator.value["enum"])
            assert set(fconst["enum"]) < set(iconst["enum"])
            continue
        assert iconst == fconst, (ikey, fkey)
        if field.startswith("hw_"):
            # hw_<name> / hw:<name>: literally one property of a namespace
            # shared by images and flavors
            assert image[ikey].namespace == flavor[fkey].namespace
            assert image[ikey].schema is flavor[fkey].schema
    assert twins == 34
    twin_results = [r for r in results if r.kind == "twin"]
    assert len(twin_results) == twins + 1  # + the trait:<TRAIT> pair
    assert all(r.ok for r in twin_results)


def test_generated_files_equal_the_generator_output():
    """metadefs/ is what tools/generate_flavor_namespaces.py writes."""
    assert flavor_generator.write(CATALOG_DIR, check_only=True) == []


def test_aggregate_keys_are_read_by_nova(results):
    aggregate = {r.name: r for r in results if r.kind == "aggregate"}
    assert {"availability_zone", "filter_tenant_id", "instance_type",
            "max_io_ops_per_host", "max_instances_per_host",
            "ram_weight_multiplier", "metrics_weight_multiplier",
            "build_failure_weight_multiplier"} <= set(aggregate)
    assert len(aggregate) == 18
    assert all(r.ok and r.checked >= 2 for r in aggregate.values())
    filters = {r.name: r.status for r in results
               if r.kind == "aggregate-filter"}
    assert filters["AggregateImagePropertiesIsolation"] == "excluded"
    assert filters["AggregateIoOpsFilter"] == "covered"
    volume = [r for r in results if r.kind == "volumetype"]
    assert [r.status for r in volume] == ["excluded"]


def test_catalog_drift_is_reported(catalog_copy):
    """Each kind of drift in the files is a named mismatch."""
    directory, edit = catalog_copy

    def guest(doc):
        props = doc["properties"]
        props["os:secure_boot"]["enum"].remove("required")
        props["hw_rng:rate_period"]["minimum"] = 1
        props["hide_hypervisor_id"]["title"] = "Hide hypervisor ID"
        props["hw:bogus_spec"] = {"title": "x", "type": "string"}
    edit("nova-flavor-guest.json", guest)

    def resources(doc):
        props = doc["properties"]
        props["group_policy"]["enum"].append("strict")
        del props["resources:PCPU"]
        props["resources:CUSTOM_GOLD"] = {"title": "x", "type": "integer"}
    edit("nova-flavor-resources.json", resources)

    def handling(doc):
        doc["properties"]["img_hide_hypervisor_id"]["enum"] = ["true"]
    edit("nova-image-handling.json", handling)

    def aggregate(doc):
        props = doc["properties"]
        props["max_io_ops_per_host"]["minimum"] = 1
        del props["ram_weight_multiplier"]
        props["cpu_allocation_ratio"] = {"title": "x", "type": "number"}
    edit("nova-aggregate.json", aggregate)
    edit("nova-flavor-quota.json", lambda d: d[
        "resource_type_associations"].append(
            {"name": "OS::Cinder::Volumetype"}))

    problems = _problems(flavor_coverage.run(
        catalog_mod.load_directory(directory)))
    assert "missing ['required']" in problems[("flavor", "os:secure_boot")]
    assert "extra ['strict'] (values nova lacks)" in \
        problems[("flavor", "group_policy")]
    rate = problems[("flavor", "hw_rng:rate_period")]
    assert "minimum 1, nova's extra spec has 0" in rate
    assert "nova accepts flavor hw_rng:rate_period='0' that the catalog " \
           "refuses" in rate or "catalog refuses its own sample" in rate
    assert "nova marks it deprecated" in \
        problems[("flavor", "hide_hypervisor_id")]
    assert "not described for OS::Nova::Flavor" in \
        problems[("flavor", "resources{group}:PCPU")]
    assert "nova has no flavor extra spec hw:bogus_spec" in \
        problems[("flavor-key", "hw:bogus_spec")]
    assert "excluded but also in the catalog: resources:CUSTOM_GOLD" in \
        problems[("flavor", "resources{group}:CUSTOM_{resource}")]
    assert "nova reads both the same way" in problems[
        ("twin", "img_hide_hypervisor_id / hw:hide_hypervisor_id")]
    assert "minimum 1, nova has 0" in \
        problems[("aggregate", "max_io_ops_per_host")]
    assert "not described for OS::Nova::Aggregate" in \
        problems[("aggregate", "ram_weight_multiplier")]
    assert "nova reads no aggregate key cpu_allocation_ratio" in \
        problems[("aggregate", "cpu_allocation_ratio")]
    assert "GlanceExt::Nova::FlavorQuota is associated" in \
        problems[("volumetype", "OS::Cinder::Volumetype")]


@pytest.fixture
def future_nova(monkeypatch, nova):
    """Nova's validator registry, edited in memory as a newer nova might."""
    registry = nova.validators.VALIDATORS
    monkeypatch.setattr(nova.validators, "VALIDATORS", dict(registry))

    def change(name, **value):
        validator = copy.deepcopy(registry[name])
        validator.value.update(value)
        nova.validators.VALIDATORS[name] = validator

    def add(validator):
        nova.validators.VALIDATORS[validator.name] = validator
    return change, add, registry


def test_nova_drift_is_reported(shipped_catalog, future_nova):
    change, add, registry = future_nova
    change("hw:cpu_policy", enum=["dedicated", "shared", "mixed", "fancy"])
    change("hw:serial_port_count", max=8)
    template = registry["hw:pmu"]
    add(type(template)(name="hw:new_feature", description="new",
                       value={"type": bool}))
    grouped = copy.deepcopy(registry["resources{group}:VCPU"])
    grouped.parameters[0]["pattern"] = r"([a-z]{1,8})?"
    grouped.__post_init__()
    add(grouped)
    problems = _problems(flavor_coverage.run(shipped_catalog))
    assert "missing ['fancy']" in problems[("flavor", "hw:cpu_policy")]
    assert "maximum None, nova's extra spec has 8" in \
        problems[("flavor", "hw:serial_port_count")]
    assert "not described for OS::Nova::Flavor (expected the key " \
           "hw:new_feature)" in problems[("flavor", "hw:new_feature")]
    assert "nova's pattern for {group}" in \
        problems[("flavor", "resources{group}:VCPU")]
    # and the generator stops, naming the spec it has no text for
    with pytest.raises(flavor_generator.GeneratorError,
                       match="hw:new_feature.*flavor_text.py"):
        flavor_generator.generated_documents(CATALOG_DIR)


def test_twins_that_nova_splits_stop_the_generator(future_nova):
    change, _, _ = future_nova
    change("hw:watchdog_action", enum=["none", "pause", "reset"])
    with pytest.raises(flavor_generator.GeneratorError,
                       match="hw_watchdog_action and flavor extra spec "
                             "hw:watchdog_action differ in nova"):
        flavor_generator.generated_documents(CATALOG_DIR)


def test_conventions_match_nova_parameters(nova):
    seen = {}
    for validator in nova.all_validators():
        for param in validator.parameters:
            seen.setdefault(param["name"], set()).add(param["pattern"])
    covered = {k: v for k, v in seen.items()
               if k in extra_specs.CANONICAL_PARAMETERS}
    assert covered == {k: {p} for k, p in
                       extra_specs.PARAMETER_PATTERNS.items()}
    # the others belong to excluded specs only
    for validator in nova.all_validators():
        if any(p["name"] not in extra_specs.CANONICAL_PARAMETERS
               for p in validator.parameters):
            assert validator.name in exclusions.EXCLUDED_EXTRA_SPECS


@pytest.mark.parametrize("pattern,good,bad", [
    (r"(large|small|any|\d+)", "any", "anyx"),
    (r"a|b\d", "b1", "ab1"),
    (r"[|]x", "|x", "a|x"),
    (r"\|x|y", "y", "|xy"),
])
def test_anchored_means_fullmatch(pattern, good, bad):
    anchored = extra_specs.anchored(pattern)
    assert re.search(anchored, good) and re.fullmatch(pattern, good)
    assert not re.search(anchored, bad) and not re.fullmatch(pattern, bad)


def test_spec_constraints_from_nova_value_dicts():
    assert extra_specs.spec_constraints({"type": bool}) == {
        "type": "string", "enum": ["true", "false"]}
    assert extra_specs.spec_constraints(
        {"type": int, "min": 0, "max": 15}) == {
        "type": "integer", "minimum": 0, "maximum": 15}
    assert extra_specs.spec_constraints(
        {"type": str, "enum": ("a", "b"), "description": "x"}) == {
        "type": "string", "enum": ["a", "b"]}
    with pytest.raises(ValueError, match="unknown"):
        extra_specs.spec_constraints({"type": float})


def test_flavor_key_resolution(flavor_rules):
    rule = flavor_rules.rule_for
    assert rule("resources42:VGPU") is rule("resources:VGPU")
    trait = rule("trait_a-b:COMPUTE_STATUS_DISABLED")
    assert trait.enum == {"required", "forbidden"}
    assert rule("hw:numa_cpus.127") is rule("hw:numa_cpus.0")
    assert rule("hw:numa_cpus.128") is None  # nova reads nodes 0-127
    assert rule("capabilities:cpu_info:topology:cores").key == \
        "capabilities:cpu_info:topology:cores"
    assert rule("capabilities:cpu_info:maxphysaddr:bits").key == \
        "capabilities:cpu_info"
    assert rule("resources:CUSTOM_GOLD") is None  # site-defined, excluded
    assert rule("hw_disk_bus") is None  # an image key, not a flavor one
