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

"""``metadefs check``: the shipped catalog is clean and every defect is named."""

import os
import sys


from glance_ext import testing
from glance_ext.metadefs import check
from glance_ext.metadefs import catalog as catalog_mod

# pip installs Glance's metadefs as data files under the environment prefix
GLANCE_SHIPPED = os.path.join(sys.prefix, "etc", "glance", "metadefs")


def _errors(directory):
    return [p for p in check.check_directory(directory)
            if p.severity == check.ERROR]


def test_shipped_catalog_has_no_problem(shipped_catalog):
    assert check.check_catalog(shipped_catalog) == []


def test_catalog_associations_are_right_for_nova(shipped_catalog):
    image_docs = 0
    for doc in shipped_catalog.documents:
        assocs = {a["name"]: a for a in doc["resource_type_associations"]}
        if catalog_mod.IMAGE not in assocs:
            # flavor or aggregate namespaces: nothing for images or volumes
            assert catalog_mod.VOLUME not in assocs, doc["namespace"]
            assert set(assocs) <= {catalog_mod.FLAVOR,
                                   "OS::Nova::Aggregate"}, doc["namespace"]
            continue
        image_docs += 1
        assert assocs[catalog_mod.VOLUME]["properties_target"] == "image"
        image_prefix = assocs[catalog_mod.IMAGE].get("prefix", "")
        assert assocs[catalog_mod.VOLUME].get("prefix", "") == image_prefix
        if catalog_mod.FLAVOR in assocs:
            assert (image_prefix, assocs[catalog_mod.FLAVOR]["prefix"]) == \
                ("hw_", "hw:")
    assert image_docs == 8
    traits = shipped_catalog.document("GlanceExt::Nova::Traits")
    assert {a.get("prefix") for a in
            traits["resource_type_associations"]} == {"trait:"}


def test_missing_title_is_an_error(catalog_copy):
    directory, edit = catalog_copy
    path = edit("nova-cpu.json",
                lambda d: d["properties"]["cpu_policy"].pop("title"))
    errors = _errors(directory)
    assert any(p.source == path and p.where == "properties/cpu_policy" and
               "no title" in p.message for p in errors), errors


def test_conflicting_duplicate_names_both_places(catalog_copy):
    directory, edit = catalog_copy

    def add_conflict(doc):
        # the image key hw_cpu_policy, again, with a stale enum
        doc["properties"]["hw_cpu_policy"] = {
            "title": "x", "description": "x", "type": "string",
            "enum": ["shared", "dedicated"]}
    edit("nova-image-hardware.json", add_conflict)
    errors = _errors(directory)
    conflict = [p for p in errors if "different constraints" in p.message]
    # once for images, once for volume image metadata
    assert sorted(p.where for p in conflict) == [
        "OS::Cinder::Volume key hw_cpu_policy",
        "OS::Glance::Image key hw_cpu_policy"], errors
    assert "GlanceExt::Nova::CPU" in conflict[0].message
    assert "'mixed'" in conflict[0].message


def test_identical_duplicate_is_only_a_warning(catalog_copy, shipped_catalog):
    directory, edit = catalog_copy
    same = dict(shipped_catalog.document("GlanceExt::Nova::ImageHardware")[
        "properties"]["hw_disk_bus"])
    edit("nova-guest-os.json",
         lambda d: d["properties"].__setitem__("hw_disk_bus", same))
    problems = check.check_directory(directory)
    assert [p.severity for p in problems] == [check.WARNING] * 2  # img+vol
    assert "identically" in problems[0].message


def test_duplicate_json_key_is_reported(catalog_copy):
    directory, _ = catalog_copy
    path = os.path.join(directory, "nova-cpu.json")
    with open(path) as f:
        text = f.read()
    text = text.replace('"visibility": "public",',
                        '"visibility": "public", "visibility": "private",')
    with open(path, "w") as f:
        f.write(text)
    errors = _errors(directory)
    assert any("'visibility' appears twice" in p.message for p in errors)


def test_schema_violation_names_the_path(catalog_copy):
    directory, edit = catalog_copy
    edit("nova-cpu.json",
         lambda d: d["properties"]["cpu_cores"].__setitem__("type", "int"))
    errors = _errors(directory)
    assert any(p.where == "properties/cpu_cores/type" and
               "Glance's namespace schema" in p.message for p in errors)


def test_wrong_prefixes_and_targets(catalog_copy):
    directory, edit = catalog_copy

    def break_assocs(doc):
        for assoc in doc["resource_type_associations"]:
            if assoc["name"] == catalog_mod.VOLUME:
                assoc.pop("properties_target")
            if assoc["name"] == catalog_mod.FLAVOR:
                assoc["prefix"] = "hw_"
    edit("nova-cpu.json", break_assocs)
    edit("nova-traits.json", lambda d: d["resource_type_associations"][0]
         .__setitem__("prefix", "traits:"))
    messages = " | ".join(p.message for p in _errors(directory))
    assert "needs \"properties_target\": \"image\"" in messages
    assert "goes with flavor extra-spec prefix 'hw:'" in messages
    assert "prefix 'traits:' is never read by nova" in messages


def test_bad_pattern_range_and_boolean_spelling(catalog_copy):
    directory, edit = catalog_copy

    def break_props(doc):
        doc["properties"]["cpu_realtime_mask"]["pattern"] = "(("
        doc["properties"]["cpu_cores"]["maximum"] = 0
    edit("nova-cpu.json", break_props)
    edit("nova-devices.json", lambda d: d["properties"]["pmu"].__setitem__(
        "enum", ["yes", "no"]))
    messages = " | ".join(p.message for p in _errors(directory))
    assert "not a valid regular expression" in messages
    assert "minimum 1 is above maximum 0" in messages
    assert "booleans are written one way" in messages


def test_invalid_json_names_line(catalog_copy):
    directory, _ = catalog_copy
    with open(os.path.join(directory, "broken.json"), "w") as f:
        f.write('{"namespace": "x",\n  oops}\n')
    errors = _errors(directory)
    assert any(p.source.endswith("broken.json") and "line 2" in p.message
               for p in errors)


def test_glances_own_metadefs_show_the_known_defects():
    """Shipped Glance 33 metadefs: the defects anchors.md lists are found."""
    if not os.path.isdir(GLANCE_SHIPPED):
        testing.needs("Glance's metadefs are not in %s" % GLANCE_SHIPPED)
    messages = " | ".join(str(p) for p in _errors(GLANCE_SHIPPED))
    assert "compute-vtpm.json" in messages and "traits:" in messages
    assert "compute-host-capabilities.json" in messages and \
        "aggregate metadata keys have no prefix" in messages
    assert "hw_vif_model" in messages and "different constraints" in messages
