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

"""Generate the flavor and aggregate namespaces, and the image/flavor twins.

The source of every constraint is nova itself: its extra-spec validators
(name, type, enum, min/max, pattern, deprecation), its image object (the
image side of a twin), its scheduler filters, weighers and their options
(aggregate keys).  The text operators read comes from flavor_text.  The
output is committed as JSON in ``metadefs/``; ``--check`` (and a unit
test) regenerates it and fails when the files drift from the installed
nova.

One generator for both sides where nova's data overlaps: an image property
``hw_<name>`` and its flavor twin ``hw:<name>`` are one property of a
namespace associated with both (``GlanceExt::Nova::CPU``, ``::MemoryNUMA``,
``::Devices``); their constraints are written from the flavor validator
after checking that nova's image field agrees, and the image side of a
twin with another name (``img_hide_hypervisor_id``, ``os_secure_boot``)
is written by the same code.  Only where nova itself treats the two sides
differently (``os_secure_boot`` also takes ``optional``) do they differ.
"""

import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import exclusions
from glance_ext.metadefs import extra_specs
from glance_ext.metadefs import flavor_text
from glance_ext.metadefs import generators
from glance_ext.metadefs import nova_data
from glance_ext.exceptions import GeneratorError

IMAGE = catalog_mod.IMAGE
FLAVOR = catalog_mod.FLAVOR

# Image properties whose flavor twin has another name; nova reads both
# (nova/virt/hardware.py, nova/virt/libvirt/driver.py).
NAMED_TWINS: Dict[str, str] = {
    "hw:hide_hypervisor_id": "img_hide_hypervisor_id",
    "hide_hypervisor_id": "img_hide_hypervisor_id",
    "os:secure_boot": "os_secure_boot",
}
# Image fields nova lets an image set in more ways than the flavor: the
# catalog follows nova and the twin check expects exactly this difference.
IMAGE_WIDER_THAN_FLAVOR = ("os_secure_boot",)

# Files the generator rewrites the twins' constraints in (the rest of
# those files is hand-written and kept).
TWIN_FILES = ("nova-cpu.json", "nova-memory-numa.json", "nova-devices.json",
              "nova-image-handling.json", "nova-guest-os.json")

# Nova's availability zone names: printable, no ':', no leading/trailing
# blank (nova/api/validation/parameter_types.py valid_az_name_regex).
# Nova spells "printable" as a list of every printable Unicode range (2,500
# characters); this pattern leaves out only its non-ASCII non-printables.
AZ_PATTERN = r"^[^:\s\x00-\x1f\x7f](?:[^:\x00-\x1f\x7f]*[^:\s\x00-\x1f\x7f])?$"
# Weigher multipliers are [filter_scheduler] <key> options, except this one.
WEIGHER_OPTION_EXCEPTIONS = {"metrics_weight_multiplier":
                             ("metrics", "weight_multiplier")}


def load_nova() -> nova_data.FlavorNova:
    try:
        return nova_data.FlavorNova()
    except nova_data.NovaUnavailable as e:
        raise GeneratorError(str(e))


# -- names -----------------------------------------------------------------

def catalog_names(validator: Any) -> List[str]:
    """The catalog keys describing ``validator`` (more than one for {num}).

    Raises GeneratorError for a parameter without a convention: such a spec
    must be excluded with a reason (exclusions.EXCLUDED_EXTRA_SPECS).
    """
    params = [p["name"] for p in validator.parameters]
    unknown = [p for p in params if p not in extra_specs.CANONICAL_PARAMETERS]
    if unknown:
        raise GeneratorError(
            "nova extra spec %s has parameter(s) %s the catalog has no "
            "naming convention for; describe it or exclude it with a reason "
            "in glance_ext/metadefs/exclusions.py EXCLUDED_EXTRA_SPECS"
            % (validator.name, ", ".join(unknown)))
    values = {p: extra_specs.CANONICAL_PARAMETERS[p] for p in params}
    if "num" not in params:
        return [extra_specs.canonical_name(validator.name, values)]
    return [extra_specs.canonical_name(validator.name, dict(values, num=str(n)))
            for n in range(extra_specs.NUMBERED_COPIES)]


def image_twin(nova: nova_data.FlavorNova, validator: Any) -> Optional[str]:
    """The image property nova reads for the same thing, if any."""
    if validator.name in NAMED_TWINS:
        return NAMED_TWINS[validator.name]
    if validator.name.startswith("hw:"):
        base = validator.name[3:].split(".", 1)[0]
        if "hw_" + base in nova.image_fields:
            return "hw_" + base
    return None


def flavor_namespace_for(name: str) -> flavor_text.NamespaceInfo:
    if name.startswith("trait{group}:"):
        return flavor_text.FLAVOR_TRAITS
    if name.startswith("resources{group}:") or name == "group_policy":
        return flavor_text.FLAVOR_RESOURCES
    if name.startswith("capabilities:"):
        return flavor_text.HOST_CAPABILITIES
    if name.startswith("quota:"):
        return flavor_text.FLAVOR_QUOTA
    if name.startswith("hw:"):
        return flavor_text.FLAVOR_HARDWARE
    return flavor_text.FLAVOR_GUEST


def _text_for(validator: Any, key: str) -> flavor_text.Text:
    name = validator.name
    text: Optional[flavor_text.Text] = flavor_text.SPEC_TEXT.get(name)
    rest = key.split(":", 1)[-1]
    if text is None:
        if name.startswith("trait{group}:"):
            text = flavor_text.trait_text(rest)
        elif name.startswith("resources{group}:"):
            text = flavor_text.resource_text(rest)
        elif name.startswith("capabilities:"):
            text = flavor_text.capability_text(rest)
        elif name.startswith("quota:"):
            text = flavor_text.quota_text(rest)
    if text is None:
        raise GeneratorError(
            "nova has the extra spec %s, which has no title or "
            "description: add them to glance_ext/metadefs/flavor_text.py "
            "SPEC_TEXT, or exclude the spec with a reason in "
            "glance_ext/metadefs/exclusions.py EXCLUDED_EXTRA_SPECS" % name)
    deprecated = extra_specs.is_marked_deprecated(
        {"title": text.title, "description": text.description})
    if bool(validator.deprecated) != deprecated:
        raise GeneratorError(
            "%s is %sdeprecated in nova; its text in flavor_text.py must %s"
            % (name, "" if validator.deprecated else "not ",
               "say so (title ending %r, description starting %r)"
               % (extra_specs.DEPRECATED_TITLE_SUFFIX,
                  extra_specs.DEPRECATED_DESCRIPTION_PREFIX)
               if validator.deprecated else "not be marked deprecated"))
    return text


def _property(text: flavor_text.Text, constraints: Dict[str, Any],
              operators: Optional[List[str]] = None) -> Dict[str, Any]:
    prop: Dict[str, Any] = {"title": text.title,
                            "description": text.description}
    if operators:
        prop["operators"] = list(operators)
    prop.update(constraints)
    return prop


# -- twins -----------------------------------------------------------------

def image_constraints(nova: nova_data.FlavorNova, field: str,
                      validator: Any) -> Dict[str, Any]:
    """The image side of a twin: the validator's, once nova's field agrees.

    Raises GeneratorError when nova's image field and flavor validator
    disagree in a way the catalog has no rule for (then they cannot share
    one property).
    """
    flavor = extra_specs.spec_constraints(validator.value)
    kind = nova.image_field_kind(field)
    enum = nova.image_enum(field)
    if field in IMAGE_WIDER_THAN_FLAVOR:
        if not enum or not set(flavor.get("enum", ())) < set(enum):
            raise GeneratorError(
                "nova's image field %s no longer takes more values than "
                "the flavor's %s (%s vs %s); drop it from "
                "IMAGE_WIDER_THAN_FLAVOR" % (field, validator.name, enum,
                                             flavor.get("enum")))
        return {"type": "string", "enum": enum}
    problem = None
    if validator.value["type"] is bool and kind != "FlexibleBooleanField":
        problem = "nova's image field is %s, the flavor spec a boolean" % kind
    elif validator.value["type"] is int and kind not in (
            "IntegerField", "ListOfIntegersField"):
        problem = "nova's image field is %s, the flavor spec an integer" % kind
    elif enum is not None and sorted(enum) != sorted(flavor.get("enum", ())):
        problem = ("nova's image field allows %s, the flavor spec %s"
                   % (sorted(enum), sorted(flavor.get("enum", ()))))
    if problem:
        raise GeneratorError(
            "image property %s and flavor extra spec %s differ in nova (%s): "
            "they cannot share one catalog property; split them or add the "
            "field to IMAGE_WIDER_THAN_FLAVOR" % (field, validator.name,
                                                  problem))
    return flavor


def _with_constraints(prop: Dict[str, Any],
                      constraints: Dict[str, Any]) -> Dict[str, Any]:
    """``prop`` with its constraint keys replaced, other keys kept in order."""
    new: Dict[str, Any] = {}
    placed = False
    for key, value in prop.items():
        if key in extra_specs.CONSTRAINT_KEYS:
            if not placed:
                new.update(constraints)
                placed = True
            continue
        new[key] = value
    if not placed:
        new.update(constraints)
    return new


def _shared_prefixes(doc: Dict[str, Any]) -> Optional[Tuple[str, str]]:
    assocs = {a.get("name"): a.get("prefix") or ""
              for a in doc.get("resource_type_associations") or ()}
    if IMAGE in assocs and FLAVOR in assocs:
        return assocs[IMAGE], assocs[FLAVOR]
    return None


def twin_documents(nova: nova_data.FlavorNova, catalog_dir: str
                   ) -> Dict[str, Dict[str, Any]]:
    """TWIN_FILES with every twin's constraints written from nova."""
    by_name = {v.name: v for v in nova.all_validators()}
    out = {}
    for filename in TWIN_FILES:
        path = os.path.join(catalog_dir, filename)
        doc = catalog_mod.load_document(path)
        new = json.loads(json.dumps(doc))
        shared = _shared_prefixes(doc)
        props = new.get("properties") or {}
        for name in list(props):
            validator, field = None, None
            if shared is not None:
                iprefix, fprefix = shared
                key = fprefix + name
                validator = _validator_for_key(nova, key)
                if validator is None:
                    raise GeneratorError(
                        "%s: %s is shared with flavors, but nova has no "
                        "flavor extra spec %s; move it to an image-only "
                        "namespace" % (path, name, key))
                field = image_twin(nova, validator)
                if field != iprefix + name.split(".", 1)[0]:
                    raise GeneratorError(
                        "%s: %s is shared with flavors, but nova's image "
                        "property for %s is %s" % (path, name, key, field))
                constraints = image_constraints(nova, field, validator)
            else:
                twin = [n for n, f in NAMED_TWINS.items()
                        if f == name and n in by_name
                        and not by_name[n].deprecated]
                if not twin:
                    continue
                constraints = image_constraints(nova, name, by_name[twin[0]])
            props[name] = _with_constraints(props[name], constraints)
        out[filename] = new
    return out


def _validator_for_key(nova: nova_data.FlavorNova, key: str) -> Any:
    found = nova.validators.VALIDATORS.get(key)
    if found is not None:
        return found
    for validator in nova.all_validators():
        if re.fullmatch(validator.name_regex, key):
            return validator
    return None


# -- flavor-only namespaces ------------------------------------------------

def _namespace_doc(info: flavor_text.NamespaceInfo,
                   properties: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    assoc: Dict[str, Any] = {"name": info.resource_type}
    if info.prefix:
        assoc["prefix"] = info.prefix
    return {
        "namespace": info.namespace,
        "display_name": info.display_name,
        "description": info.description,
        "visibility": "public",
        "protected": True,
        "resource_type_associations": [assoc],
        "properties": {k: properties[k] for k in sorted(properties)},
    }


def flavor_documents(nova: nova_data.FlavorNova) -> Dict[str, Dict[str, Any]]:
    """The flavor-only namespaces, keyed by file name."""
    props: Dict[str, Dict[str, Dict[str, Any]]] = {
        info.filename: {} for info in flavor_text.FLAVOR_NAMESPACES}
    for validator in nova.all_validators():
        if validator.name in exclusions.EXCLUDED_EXTRA_SPECS:
            continue
        field = image_twin(nova, validator)
        if field is not None and field.startswith("hw_") and \
                validator.name.startswith("hw:"):
            continue  # one property of a shared namespace: twin_documents
        info = flavor_namespace_for(validator.name)
        constraints = extra_specs.spec_constraints(validator.value)
        operators = (nova.operators if validator.name.startswith(
            "capabilities:") else None)
        for key in catalog_names(validator):
            if not key.startswith(info.prefix):
                raise GeneratorError("%s does not start with the prefix %s "
                                     "of %s" % (key, info.prefix,
                                                info.namespace))
            name = key[len(info.prefix):]
            props[info.filename][name] = _property(
                _text_for(validator, key), constraints, operators)
        if validator.name == "capabilities:cpu_info{filter}":
            for path in flavor_text.CPU_INFO_KEYS:
                key = "capabilities:cpu_info:" + path
                if not re.fullmatch(validator.name_regex, key):
                    raise GeneratorError("nova no longer accepts %s" % key)
                props[info.filename]["cpu_info:" + path] = _property(
                    flavor_text.capability_text("cpu_info:" + path),
                    constraints, operators)
    return {info.filename: _namespace_doc(info, props[info.filename])
            for info in flavor_text.FLAVOR_NAMESPACES}


# -- aggregates ------------------------------------------------------------

def weigher_keys(nova: nova_data.FlavorNova) -> List[str]:
    """Aggregate keys of weigher multipliers, from nova's options."""
    keys = [name for name in nova.options("filter_scheduler")
            if name.endswith("_weight_multiplier")]
    return sorted(keys + list(WEIGHER_OPTION_EXCEPTIONS))


def weigher_option(nova: nova_data.FlavorNova, key: str) -> Tuple[str, str]:
    return WEIGHER_OPTION_EXCEPTIONS.get(key, ("filter_scheduler", key))


def _metadata_max_length(nova: nova_data.FlavorNova) -> int:
    schema = nova.parameter_types.metadata["patternProperties"]
    (value_schema,) = schema.values()
    return int(value_schema["maxLength"])


def aggregate_constraints(nova: nova_data.FlavorNova,
                          key: str) -> Dict[str, Any]:
    if key == "availability_zone":
        az = nova.parameter_types.az_name
        return {"type": "string", "pattern": AZ_PATTERN,
                "minLength": az["minLength"], "maxLength": az["maxLength"]}
    if key in ("max_io_ops_per_host", "max_instances_per_host"):
        opt = nova.option("filter_scheduler", key)
        out: Dict[str, Any] = {"type": "integer"}
        if getattr(opt.type, "min", None) is not None:
            out["minimum"] = opt.type.min
        if getattr(opt.type, "max", None) is not None:
            out["maximum"] = opt.type.max
        return out
    if key.endswith("_weight_multiplier"):
        opt = nova.option(*weigher_option(nova, key))
        out = {"type": "number"}
        if getattr(opt.type, "min", None) is not None:
            out["minimum"] = opt.type.min
        if getattr(opt.type, "max", None) is not None:
            out["maximum"] = opt.type.max
        return out
    return {"type": "string", "maxLength": _metadata_max_length(nova)}


def aggregate_document(nova: nova_data.FlavorNova) -> Dict[str, Any]:
    props = {}
    for key, text in flavor_text.AGGREGATE_TEXT.items():
        props[key] = _property(text, aggregate_constraints(nova, key))
    for key in weigher_keys(nova):
        if key not in flavor_text.WEIGHER_TEXT:
            raise GeneratorError(
                "nova has the weigher multiplier option %s, which has no "
                "text: add it to flavor_text.py WEIGHER_TEXT" % key)
        title, gloss = flavor_text.WEIGHER_TEXT[key]
        group, option = weigher_option(nova, key)
        opt = nova.option(group, option)
        props[key] = _property(flavor_text.Text(
            title,
            "Overrides [%s] %s (default %s) for the aggregate's hosts: %s. "
            "0 turns the weigher off." % (group, option, opt.default, gloss)),
            aggregate_constraints(nova, key))
    return _namespace_doc(flavor_text.AGGREGATE_SCHEDULING, props)


# -- files -----------------------------------------------------------------

def generated_documents(catalog_dir: str) -> Dict[str, Dict[str, Any]]:
    """Every file this generator owns (wholly or its twins), by file name."""
    nova = load_nova()
    docs = flavor_documents(nova)
    docs[flavor_text.AGGREGATE_SCHEDULING.filename] = aggregate_document(nova)
    docs.update(twin_documents(nova, catalog_dir))
    return docs


def write(catalog_dir: str, check_only: bool = False) -> List[str]:
    """Write the files; with ``check_only`` return one line per drifted file."""
    drift = []
    for filename, doc in sorted(generated_documents(catalog_dir).items()):
        path = os.path.join(catalog_dir, filename)
        if check_only:
            try:
                current = generators.render_document(
                    catalog_mod.load_document(path))
            except catalog_mod.CatalogError as e:
                drift.append(str(e))
                continue
            if current != generators.render_document(doc):
                drift.append("%s differs from what the installed nova "
                             "gives; run tools/generate_flavor_namespaces.py"
                             % path)
        else:
            generators.dump_document(doc, path)
    return drift
