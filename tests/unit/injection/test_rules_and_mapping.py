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

"""Rules, templating, discovered-property mapping and the merge."""

import json

import pytest

from glance_ext.injection import catalog_check
from glance_ext.injection import discovered
from glance_ext.injection import facts as facts_mod
from glance_ext.injection import plan as plan_mod
from glance_ext.injection import rules
from glance_ext.injection import templating


@pytest.fixture(scope="module")
def ruleset():
    return catalog_check.load()


def _facts(**kw):
    base = dict(os_type="windows", distro="windows", family="windows",
                osinfo_id="win2k22", version="10.0", architecture="x86_64",
                firmware="uefi", disk_format="qcow2", project="p1",
                roles=frozenset({"member", "reader"}), visibility="private")
    base.update(kw)
    return facts_mod.Facts(**base)


# -- templating ---------------------------------------------------------

def test_render_substitutes_known_names_and_literal_braces():
    values = _facts(distro="ubuntu", version="22.04").variables()
    assert templating.render("{os.distro}-{ os.version }", values) == \
        "ubuntu-22.04"
    assert templating.render("{{x}}", values) == "{x}"


@pytest.mark.parametrize("template,needle", [
    ("{os.__class__}", "unknown name {os.__class__}"),
    ("{nope}", "unknown name {nope}"),
    ("a}b", "stray '}'"),
    ("{a{b}", "stray '{'"),
])
def test_bad_templates_are_named(template, needle):
    with pytest.raises(templating.TemplateError) as exc:
        templating.variables_used(template)
    assert needle in str(exc.value)


def test_missing_value_is_reported_not_rendered_empty():
    with pytest.raises(templating.MissingValue) as exc:
        templating.render("v{os.version}", _facts(version=None).variables())
    assert exc.value.name == "os.version"


# -- rules: loading ---------------------------------------------------------

def test_load_yaml_and_json_files(tmp_path, ruleset):
    y = tmp_path / "r.yaml"
    y.write_text("- when: {os_type: windows, disk_format: [qcow2, raw]}\n"
                 "  set: {hw_disk_bus: sata, hw_qemu_guest_agent: true,\n"
                 "        os_admin_user: '{os.distro}-admin'}\n"
                 "  override_user: true\n")
    j = tmp_path / "r.json"
    j.write_text(json.dumps({"rules": [{"set": {"hw_rng_model": "virtio"}}]}))
    loaded = rules.load_file(str(y), ruleset)
    assert loaded[0].when == {"os_type": frozenset({"windows"}),
                              "disk_format": frozenset({"qcow2", "raw"})}
    # YAML booleans become the catalog's spelling.
    assert loaded[0].set["hw_qemu_guest_agent"] == "true"
    assert loaded[0].override_user is True
    assert rules.load_file(str(j), ruleset)[0].set == {
        "hw_rng_model": "virtio"}


@pytest.mark.parametrize("data,needle", [
    ([{"set": {"hw_disk_bus": "foo"}}],
     "rule 1 sets hw_disk_bus=foo: it is not allowed; allowed: one of fdc, "
     "ide, sata"),
    ([{"set": {"hw_rng_model": "virtio"}},
      {"set": {"hw_firmware_type": "efi"}}],
     "rule 2 sets hw_firmware_type=efi: it is not allowed"),
    ([{"set": {"os_glance_foo": "1"}}], "reserved for Glance"),
    ([{"set": {"min_disk": "10"}}], "image attribute, not an extra property"),
    ([{"set": {"glance_ext_inject_check_acpi": "pass"}}],
     "records of glance_ext's plugins"),
    ([{"when": {"os_kind": "linux"}, "set": {"a": "b"}}],
     "rule 1: unknown condition 'os_kind'"),
    ([{"when": {"os_type": []}, "set": {"a": "b"}}], "could never match"),
    ([{"sett": {"a": "b"}}], "rule 1: unknown field(s) sett"),
    ([{"set": {}}], "'set' must be a non-empty mapping"),
    ([{"set": {"a": "{os.nope}"}}], "rule 1 sets a: unknown name {os.nope}"),
    ([{"set": {"a": ["x"]}}], "is a list; use a string"),
    ([{"set": {"a": "b"}, "override_user": "yes"}],
     "override_user must be true or false"),
    ({"set": {"a": "b"}}, "must hold a list of rules"),
])
def test_invalid_rules_are_configuration_errors(data, needle, ruleset):
    with pytest.raises(rules.RuleError) as exc:
        rules.parse_rules(data, ruleset)
    assert needle in str(exc.value)


def test_unreadable_and_malformed_files(tmp_path, ruleset):
    with pytest.raises(rules.RuleError, match="cannot read rules_file"):
        rules.load_file(str(tmp_path / "missing.yaml"), ruleset)
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(rules.RuleError, match="is not valid JSON"):
        rules.load_file(str(bad), ruleset)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- set: [\n")
    with pytest.raises(rules.RuleError, match="is not valid YAML"):
        rules.load_file(str(bad), ruleset)


def test_static_properties_are_checked(ruleset):
    assert rules.static_rule({}, ruleset) is None
    rule = rules.static_rule({"hw_video_model": "virtio"}, ruleset)
    assert rule.label == "static_properties" and not rule.when
    with pytest.raises(rules.RuleError,
                       match="static_properties sets hw_video_model=vga2"):
        rules.static_rule({"hw_video_model": "vga2"}, ruleset)


# -- rules: evaluation --------------------------------------------------

@pytest.mark.parametrize("when,matches", [
    ({}, True),
    ({"os_type": "windows"}, True),
    ({"os_type": "linux"}, False),
    ({"os_distro": "win2k22"}, True),          # osinfo id
    ({"os_distro": ["windows", "rhel"]}, True),  # family / ID
    ({"disk_format": ["raw", "qcow2"], "project": "p1"}, True),
    ({"disk_format": "raw"}, False),
    ({"roles": ["admin"]}, False),
    ({"roles": ["admin", "member"]}, True),
    ({"visibility": "public"}, False),
    ({"firmware": "uefi", "architecture": "x86_64",
      "os_version": "10.0"}, True),
])
def test_conditions(when, matches, ruleset):
    rule = rules.parse_rules([{"when": when, "set": {"a": "b"}}],
                             ruleset)[0]
    assert rule.matches(_facts()) is matches


def test_unknown_fact_never_matches(ruleset):
    rule = rules.parse_rules([{"when": {"os_type": "linux"},
                               "set": {"a": "b"}}], ruleset)[0]
    assert not rule.matches(_facts(os_type=None))


def test_evaluate_renders_and_skips_missing_values(ruleset):
    loaded = rules.parse_rules([
        {"when": {"os_type": "linux"}, "set": {"x": "1"}},
        {"set": {"os_admin_user": "{os.distro}",
                 "note": "v{os.version}"}}], ruleset)
    applied = rules.evaluate(loaded, _facts(version=None))
    assert len(applied) == 1
    rule, (props, skipped) = applied[0]
    assert rule.number == 2
    assert props == {"os_admin_user": "windows"}
    assert skipped == ["rule 2: note not set: {os.version} is unknown for "
                       "this image"]


# -- discovered -----------------------------------------------------------

LINUX = {"os": {"os_type": "linux", "distro": "ubuntu", "version": "22.04",
                "osinfo_id": "ubuntu22.04", "id_like": ["debian"]},
         "architecture": "x86_64", "firmware": "uefi",
         "checks": [{"id": "cloud-init", "status": "pass",
                     "severity": "error", "evidence": []},
                    {"id": "ssh-host-keys", "status": "fail",
                     "severity": "error", "evidence": ["key"]},
                    {"id": "qemu-guest-agent", "status": "pass",
                     "severity": "info", "evidence": []}]}


def _settings(**kw):
    from glance_ext.injection import options
    base = dict(enabled=frozenset(options.DISCOVERABLE))
    base.update(kw)
    return discovered.Settings(**base)


def test_linux_report_maps_to_nova_properties():
    props, notes = discovered.discover(LINUX, _settings())
    assert props == {
        "os_type": "linux", "os_distro": "ubuntu22.04",
        "os_version": "22.04", "hw_architecture": "x86_64",
        "hw_firmware_type": "uefi", "hw_machine_type": "q35",
        "hw_qemu_guest_agent": "true",
        "glance_ext_inject_check_cloud_init": "pass",
        "glance_ext_inject_check_ssh_host_keys": "fail",
        "glance_ext_inject_check_qemu_guest_agent": "pass",
        "glance_ext_inject_checks_failed": "ssh-host-keys"}
    assert notes == []


def test_each_property_is_switchable_and_family_style():
    props, _ = discovered.discover(LINUX, _settings(
        enabled=frozenset({"os_distro", "hw_firmware_type"}),
        os_distro_style="family"))
    assert props == {"os_distro": "ubuntu", "hw_firmware_type": "uefi"}


@pytest.mark.parametrize("firmware,arch,expected", [
    ("bios", "x86_64", {"hw_firmware_type": "bios"}),
    ("both", "x86_64", {}),
    ("uefi", "aarch64", {"hw_firmware_type": "uefi",
                         "hw_machine_type": "virt"}),
    (None, None, {}),
])
def test_firmware_and_machine_type(firmware, arch, expected):
    report = {"os": {"os_type": "linux"}, "firmware": firmware,
              "architecture": arch}
    props, _ = discovered.discover(report, _settings(enabled=frozenset(
        {"hw_firmware_type", "hw_machine_type"})))
    assert props == expected


@pytest.mark.parametrize("drivers,expected", [
    ({"storage": False, "network": False, "storage_bus": None},
     {"hw_disk_bus": "sata", "hw_vif_model": "e1000"}),
    ({"storage": True, "network": True, "storage_bus": "virtio"}, {}),
    ({"storage": True, "network": False, "storage_bus": "scsi"},
     {"hw_disk_bus": "scsi", "hw_scsi_model": "virtio-scsi",
      "hw_vif_model": "e1000"}),
])
def test_windows_devices_follow_the_drivers(drivers, expected):
    report = {"os": {"os_type": "windows"}}
    props, _ = discovered.discover(report, _settings(
        enabled=frozenset({"windows_drivers"})), drivers)
    assert props == expected


def test_windows_drivers_unknown_sets_nothing_and_says_why():
    props, notes = discovered.discover(
        {"os": {"os_type": "windows"}},
        _settings(enabled=frozenset({"windows_drivers"})),
        {"error": "no Windows system volume found"})
    assert props == {}
    assert "no Windows system volume found" in notes[0]


# -- plan -----------------------------------------------------------------

def test_user_values_are_kept_unless_a_rule_overrides(ruleset):
    loaded = rules.parse_rules([
        {"set": {"hw_disk_bus": "sata"}},
        {"set": {"hw_vif_model": "e1000"}, "override_user": True}],
        ruleset)
    applied = [(r, r.render(_facts())[0]) for r in loaded]
    plan = plan_mod.build(
        {"os_type": "windows", "os_distro": "win2k22",
         "glance_ext_inject_check_x": "pass"},
        applied,
        {"os_distro": "windows", "hw_disk_bus": "ide",
         "hw_vif_model": "rtl8139", "glance_ext_inject_check_x": "fake"},
        ruleset, own_prefix="glance_ext_inject_")
    assert plan.to_set == {"os_type": "windows", "hw_vif_model": "e1000",
                           "glance_ext_inject_check_x": "pass"}
    assert plan.kept_user == {"os_distro": ("windows", "win2k22"),
                              "hw_disk_bus": ("ide", "sata")}
    assert plan.sources["hw_vif_model"] == "rule 2"


def test_later_rule_wins_and_rules_beat_discovered(ruleset):
    loaded = rules.parse_rules([{"set": {"hw_machine_type": "pc"}},
                                {"set": {"hw_machine_type": "q35"}}],
                               ruleset)
    applied = [(r, dict(r.set)) for r in loaded]
    plan = plan_mod.build({"hw_machine_type": "virt"}, applied, {}, ruleset)
    assert plan.to_set == {"hw_machine_type": "q35"}


def test_rendered_value_is_checked_after_rendering(ruleset):
    loaded = rules.parse_rules([{"set": {"hw_disk_bus": "{os.distro}"}}],
                               ruleset)
    applied = [(loaded[0], loaded[0].render(_facts())[0])]
    with pytest.raises(rules.RuleError) as exc:
        plan_mod.build({}, applied, {}, ruleset)
    assert str(exc.value).startswith(
        "rule 1 sets hw_disk_bus=windows: it is not allowed; allowed: ")


def test_discovered_value_refused_by_catalog_is_dropped(ruleset):
    plan = plan_mod.build({"hw_architecture": "amd64",
                           "os_distro": "someos1.0"}, [], {}, ruleset)
    # amd64 is nova's alias, refused by the catalog; os_distro is advisory.
    assert plan.to_set == {"os_distro": "someos1.0"}
    assert any("hw_architecture" in n for n in plan.notes)
    assert any(n.startswith("advisory:") for n in plan.notes)
