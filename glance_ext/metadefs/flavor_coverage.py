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

"""The flavor and aggregate part of ``glance-ext metadefs coverage``.

Asks nova, not a copy of its rules:
- every extra-spec validator nova 34 registers is described (under the
  catalog's name for it) or excluded with a reason, with nova's exact
  type, enum, min/max and pattern, deprecated ones marked;
- every allowed value of the catalog goes through nova's own
  ``validators.validate()`` and must pass, a sample of forbidden ones must
  be refused by nova and by the catalog alike, also under the other names
  of a parameterised spec (``resources1:VCPU``, ``hw:numa_cpus.12``...);
- every flavor key of the catalog is one nova knows;
- an image property and its flavor twin allow the same values, except
  where nova itself differs;
- every aggregate key is read by nova's own filter or weigher code (real
  ``HostState`` and ``Aggregate`` objects), values included, and no
  Aggregate* filter or weigher reads a key the catalog leaves out.
Any difference makes the result a mismatch and the command exit 1.
"""

import contextlib
import inspect
import logging
import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import coverage
from glance_ext.metadefs import exclusions
from glance_ext.metadefs import extra_specs
from glance_ext.metadefs import flavor_generator
from glance_ext.metadefs import flavor_text
from glance_ext.metadefs import generators
from glance_ext.metadefs import nova_data
from glance_ext.metadefs import rules as rules_mod

Result = coverage.Result

# Values for specs with a pattern or free text; each must pass the catalog
# and nova.  Keyed by nova's validator name; image twins fall back to the
# image samples of coverage.GOOD_SAMPLES.
GOOD_SAMPLES: Dict[str, Tuple[str, ...]] = {
    "hw:cpu_dedicated_mask": ("^0-1", "0-3,^2", "2"),
    "hw:pmem": ("6GB", "6GB,LARGE_1"),
    "pci_passthrough:alias": ("a1:2", "gpu:1, nic_x:2"),
}
FREE_TEXT_SAMPLES = ("example-1", "<in> gcc")
BAD_SAMPLES: Dict[str, Tuple[str, ...]] = {
    "hw:cpu_dedicated_mask": ("0-1,a", "all"),
    "hw:pmem": ("6 GB", "a-b"),
    "pci_passthrough:alias": ("a1", "a1:x", "a1:2;b:1"),
}
BOOLEAN_SPELLINGS = ("yes", "No", "1", "off")

# Samples for the aggregate keys, fed to nova's code below.
AGGREGATE_GOOD: Dict[str, Tuple[str, ...]] = {
    "availability_zone": ("az1", "nova", "zone a", "zone-\u00e9"),
    "filter_tenant_id": ("p1", "p1,p2", "p2 , p1"),
    "instance_type": ("m1.small", "m1.large,m1.small"),
}
AGGREGATE_BAD: Dict[str, Tuple[str, ...]] = {
    "availability_zone": (" az", "az ", "az:1", "", "a\x01b", "x" * 256),
    "filter_tenant_id": ("p" * 256,),
    "instance_type": ("m" * 256,),
}
# Nova's filters and the aggregate keys they read; the readers below call
# each with real nova objects.
FILTER_KEYS: Dict[str, Tuple[str, ...]] = {
    "AggregateIoOpsFilter": ("max_io_ops_per_host",),
    "AggregateNumInstancesFilter": ("max_instances_per_host",),
    "AggregateMultiTenancyIsolation": ("filter_tenant_id",),
    "AggregateTypeAffinityFilter": ("instance_type",),
}


class _Catalog:
    """The catalog's flavor and aggregate view, looked up by key."""

    def __init__(self, catalog: catalog_mod.Catalog):
        self.flavor = extra_specs.FlavorRules(catalog)
        self.flavor_props = {p.key: p for p in
                             catalog.properties_for(catalog_mod.FLAVOR)}
        self.image_props = {p.key: p for p in
                            catalog.properties_for(catalog_mod.IMAGE)}
        self.aggregate = rules_mod.compile_rules(
            catalog, extra_specs.AGGREGATE, advisory=())
        self.aggregate_props = {p.key: p for p in catalog.properties_for(
            extra_specs.AGGREGATE)}


def _sample_field(name: str) -> str:
    """The image property whose samples fit the flavor spec ``name``."""
    if name in flavor_generator.NAMED_TWINS:
        return flavor_generator.NAMED_TWINS[name]
    if name.startswith("hw:"):
        return "hw_" + name[3:].split(".", 1)[0]
    return ""


def _good_values(validator: Any, rule: rules_mod.Rule) -> List[str]:
    if rule.kind == "boolean":
        return ["true", "false"] + list(BOOLEAN_SPELLINGS)
    if rule.kind == "enum":
        return list(rule.enum_order)
    if rule.kind == "integer":
        values = coverage._good_values(validator.name, rule)
        if rule.minimum is None:
            values += ["0", "-1"]
        return values
    if validator.name in GOOD_SAMPLES:
        return list(GOOD_SAMPLES[validator.name])
    field = _sample_field(validator.name)
    if field in coverage.GOOD_SAMPLES:
        return list(coverage.GOOD_SAMPLES[field])
    if rule.pattern is None:
        return list(FREE_TEXT_SAMPLES)
    return []


def _bad_values(validator: Any, rule: rules_mod.Rule) -> List[str]:
    if rule.kind in ("boolean", "enum"):
        return coverage._bad_values(validator.name, rule) + [""]
    if rule.kind == "integer":
        return coverage._bad_values(validator.name, rule) + ["1.5", ""]
    if validator.name in BAD_SAMPLES:
        return list(BAD_SAMPLES[validator.name])
    field = _sample_field(validator.name)
    return list(coverage.BAD_SAMPLES.get(field, ()))


def _compare_constraints(result: Result, expected: Dict[str, Any],
                         actual: Dict[str, Any], what: str) -> None:
    """Name each difference between the catalog and nova's constraints."""
    if expected.get("type") != actual.get("type"):
        result.detail.append("type %s, %s is %s" % (
            actual.get("type"), what, expected.get("type")))
    want, got = expected.get("enum"), actual.get("enum")
    if (want is None) != (got is None) or (
            want is not None and sorted(want) != sorted(got)):
        missing = sorted(set(want or ()) - set(got or ()))
        extra = sorted(set(got or ()) - set(want or ()))
        result.detail.append("enum differs from %s: missing %s, extra %s "
                             "(values nova lacks)" % (
                                 what, missing or "none", extra or "none"))
    for attr in ("minimum", "maximum", "pattern", "minLength", "maxLength"):
        if expected.get(attr) != actual.get(attr):
            result.detail.append("%s %s, %s has %s" % (
                attr, actual.get(attr), what, expected.get(attr)))


def _feed(nova: nova_data.FlavorNova, result: Result, key: str,
          rule: rules_mod.Rule, good: List[str], bad: List[str],
          validator: Any, lookup: bool = True) -> None:
    """Values through the catalog rule and nova's validator of ``key``.

    With ``lookup`` the first good and the first bad value go through
    nova's registry lookup as the flavor API does (which also proves nova
    finds a validator under ``key``), the others straight to the validator.
    """
    first = 0 if lookup else -1
    for i, value in enumerate(good):
        result.checked += 1
        if rule.check(value) is not None:
            result.detail.append("catalog refuses its own sample %s=%r"
                                 % (key, value))
        error = nova.validate(key, value, None if i == first else validator)
        if error:
            result.detail.append("nova refuses flavor %s=%r that the "
                                 "catalog allows: %s" % (key, value, error))
    for i, value in enumerate(bad):
        result.checked += 1
        if rule.check(value) is None:
            result.detail.append("catalog allows %s=%r" % (key, value))
        if nova.validate(key, value,
                         None if i == first else validator) is None:
            result.detail.append("nova accepts flavor %s=%r that the "
                                 "catalog refuses" % (key, value))


def _rule_signature(rule: rules_mod.Rule) -> Tuple[Any, ...]:
    return (rule.namespace, rule.kind, rule.enum, rule.minimum, rule.maximum,
            rule.pattern_text, rule.min_length, rule.max_length)


def _check_parameters(nova: nova_data.FlavorNova, view: _Catalog,
                      result: Result, validator: Any, rule: rules_mod.Rule,
                      good: List[str], bad: List[str]) -> None:
    """Other names of a parameterised spec: same validator, same property."""
    canonical = {p["name"]: extra_specs.CANONICAL_PARAMETERS[p["name"]]
                 for p in validator.parameters}
    for param in validator.parameters:
        name = param["name"]
        if param["pattern"] != extra_specs.PARAMETER_PATTERNS[name]:
            result.detail.append(
                "nova's pattern for {%s} is %r, the catalog's convention "
                "(extra_specs.PARAMETER_PATTERNS) assumes %r"
                % (name, param["pattern"],
                   extra_specs.PARAMETER_PATTERNS[name]))
        for n, sample in enumerate(extra_specs.PARAMETER_SAMPLES[name]):
            key = extra_specs.canonical_name(
                validator.name, dict(canonical, **{name: sample}))
            if not re.fullmatch(validator.name_regex, key):
                result.detail.append("nova no longer reads %s as %s"
                                     % (key, validator.name))
                continue
            resolved = view.flavor.rule_for(key)
            if resolved is None or _rule_signature(resolved) != \
                    _rule_signature(rule):
                result.detail.append("the catalog does not describe %s as "
                                     "it describes %s" % (key, rule.key))
            _feed(nova, result, key, rule, good[:1], bad[:1], validator,
                  lookup=n == 0)


def _check_validator(nova: nova_data.FlavorNova, view: _Catalog,
                     validator: Any) -> Result:
    result = Result(kind="flavor", name=validator.name, status="covered",
                    deprecated=bool(validator.deprecated))
    if validator.name in exclusions.EXCLUDED_EXTRA_SPECS:
        result.status = "excluded"
        result.detail.append(exclusions.EXCLUDED_EXTRA_SPECS[validator.name])
        pattern = re.compile(validator.name_regex)
        described = sorted(k for k in view.flavor_props
                           if pattern.fullmatch(k))
        if described:
            result.status = "mismatch"
            result.detail.append("excluded but also in the catalog: %s"
                                 % ", ".join(described[:5]))
        return result
    try:
        keys = flavor_generator.catalog_names(validator)
    except flavor_generator.GeneratorError as e:
        result.status = "missing"
        result.detail.append(str(e))
        return result
    expected = extra_specs.spec_constraints(validator.value)
    for key in keys:
        prop = view.flavor_props.get(key)
        if prop is None:
            result.status = "missing"
            result.detail.append("not described for OS::Nova::Flavor "
                                 "(expected the key %s)" % key)
            continue
        result.namespace = prop.namespace
        _compare_constraints(result, expected,
                             extra_specs.constraints_of(prop.schema),
                             "nova's extra spec")
        if validator.name.startswith(extra_specs.CAPABILITIES_PREFIX) and \
                prop.schema.get("operators") != nova.operators:
            result.detail.append(
                "operators %s, nova's ComputeCapabilitiesFilter has %s"
                % (prop.schema.get("operators"), nova.operators))
        if extra_specs.is_marked_deprecated(prop.schema) != \
                bool(validator.deprecated):
            result.detail.append(
                "nova %s it deprecated; the catalog %s" % (
                    "marks" if validator.deprecated else "does not mark",
                    "does not say so (title ending %r, description "
                    "starting %r)" % (extra_specs.DEPRECATED_TITLE_SUFFIX,
                                      extra_specs.DEPRECATED_DESCRIPTION_PREFIX)
                    if validator.deprecated else "marks it deprecated"))
    if result.status == "missing":
        return result
    rule = view.flavor.rules.exact[keys[0]]
    good, bad = _good_values(validator, rule), _bad_values(validator, rule)
    if not good:
        result.detail.append("no sample value to feed for %s; add one to "
                             "flavor_coverage.GOOD_SAMPLES" % keys[0])
    _feed(nova, result, keys[0], rule, good, bad, validator)
    if validator.parameters:
        _check_parameters(nova, view, result, validator, rule, good, bad)
    if result.detail:
        result.status = "mismatch"
    return result


def _check_catalog_keys(nova: nova_data.FlavorNova,
                        view: _Catalog) -> List[Result]:
    """Flavor keys of the catalog that nova does not know."""
    compiled = [(re.compile(v.name_regex), v) for v in nova.all_validators()]
    results = []
    for key, prop in sorted(view.flavor_props.items()):
        validator = nova.validators.VALIDATORS.get(key)
        if validator is None:
            validator = next((v for pattern, v in compiled
                              if pattern.fullmatch(key)), None)
        if validator is None:
            results.append(Result(
                kind="flavor-key", name=key, status="mismatch",
                namespace=prop.namespace,
                detail=["nova has no flavor extra spec %s: nova's API "
                        "refuses it or ignores it" % key]))
        elif validator.name in exclusions.EXCLUDED_EXTRA_SPECS:
            results.append(Result(
                kind="flavor-key", name=key, status="mismatch",
                namespace=prop.namespace,
                detail=["describes %s, which is excluded" % validator.name]))
    return results


def _check_twins(nova: nova_data.FlavorNova, view: _Catalog) -> List[Result]:
    """An image property and its flavor twin allow the same values."""
    results = []
    for validator in nova.all_validators():
        field = flavor_generator.image_twin(nova, validator)
        if field is None:
            continue
        image_key = field + (".0" if "{num}" in validator.name else "")
        flavor_key = flavor_generator.catalog_names(validator)[0]
        result = Result(kind="twin", name="%s / %s" % (image_key,
                                                       flavor_key),
                        status="covered", checked=1,
                        deprecated=bool(validator.deprecated))
        image_prop = view.image_props.get(image_key)
        flavor_prop = view.flavor_props.get(flavor_key)
        if image_prop is None or flavor_prop is None:
            result.status = "missing"
            result.detail.append("%s not described" % (
                image_key if image_prop is None else flavor_key))
            results.append(result)
            continue
        result.namespace = image_prop.namespace
        image_c = extra_specs.constraints_of(image_prop.schema)
        flavor_c = extra_specs.constraints_of(flavor_prop.schema)
        if field in flavor_generator.IMAGE_WIDER_THAN_FLAVOR:
            # nova lets the image say more; the catalog must say exactly
            # nova's two lists, the flavor's inside the image's.
            if image_c.get("enum") != nova.image_enum(field) or \
                    not set(flavor_c.get("enum", ())) < set(
                        image_c.get("enum", ())):
                result.detail.append(
                    "nova allows %s on images and %s on flavors; the catalog "
                    "%s and %s" % (nova.image_enum(field),
                                   validator.value.get("enum"),
                                   image_c.get("enum"), flavor_c.get("enum")))
        elif image_c != flavor_c:
            result.detail.append("image %s allows %s, flavor %s allows %s; "
                                 "nova reads both the same way" % (
                                     image_key, image_c, flavor_key,
                                     flavor_c))
        if result.detail:
            result.status = "mismatch"
        results.append(result)
    results.append(_check_trait_twins(view))
    return results


def _check_trait_twins(view: _Catalog) -> Result:
    result = Result(kind="twin", name="trait:<TRAIT> (image / flavor)",
                    status="covered")
    image = {k for k in view.image_props if k.startswith("trait:")}
    flavor = {k for k in view.flavor_props if k.startswith("trait:")}
    result.checked = len(image | flavor)
    if image != flavor:
        result.detail.append("traits only for images: %s; only for "
                             "flavors: %s" % (sorted(image - flavor)[:5],
                                              sorted(flavor - image)[:5]))
    for key in sorted(image & flavor):
        ienum = view.image_props[key].schema.get("enum")
        fenum = view.flavor_props[key].schema.get("enum") or ()
        # nova reads only 'required' from images (ImageMetaProps
        # _set_attr_from_trait_names); flavors may also forbid.
        if ienum != ["required"] or "required" not in fenum:
            result.detail.append("%s: image %s, flavor %s" % (key, ienum,
                                                              fenum))
            break
    if result.detail:
        result.status = "mismatch"
    return result


# -- aggregates ------------------------------------------------------------

def _number_reader(nova: nova_data.FlavorNova, key: str
                   ) -> Optional[Callable[[str], Any]]:
    """What nova's aggregate filter makes of ``key=value``, if it reads key."""
    methods = {"max_io_ops_per_host": ("AggregateIoOpsFilter",
                                       "_get_max_io_ops_per_host"),
               "max_instances_per_host": ("AggregateNumInstancesFilter",
                                          "_get_max_instances_per_host")}
    if key not in methods:
        return None
    cls_name, method = methods[key]
    cls = nova.filter_classes()[cls_name]

    def read(value: str) -> Any:
        return getattr(cls(), method)(nova.host_with_metadata({key: value}),
                                      None)
    return read


def _weigher_map(nova: nova_data.FlavorNova, keys: List[str]
                 ) -> Tuple[Dict[str, Any], List[str]]:
    """Which weigher reads which described multiplier, and the strays."""
    values = {key: 1000.0 + i for i, key in enumerate(keys)}
    host = nova.host_with_metadata({k: str(v) for k, v in values.items()})
    by_value = {v: k for k, v in values.items()}
    found, strays = {}, []
    for weigher in nova.weighers():
        got = abs(weigher.weight_multiplier(host))
        if got in by_value:
            found[by_value[got]] = weigher
        else:
            strays.append("%s reads an aggregate multiplier the catalog "
                          "does not describe" % type(weigher).__name__)
    return found, strays


def _check_aggregate_key(nova: nova_data.FlavorNova, view: _Catalog,
                         key: str, weighers: Dict[str, Any]) -> Result:
    result = Result(kind="aggregate", name=key, status="covered")
    prop = view.aggregate_props.get(key)
    if prop is None:
        result.status = "missing"
        result.detail.append("nova reads it; not described for "
                             "OS::Nova::Aggregate")
        return result
    result.namespace = prop.namespace
    rule = view.aggregate.exact[key]
    _compare_constraints(result, flavor_generator.aggregate_constraints(
        nova, key), extra_specs.constraints_of(prop.schema), "nova")
    good = list(AGGREGATE_GOOD.get(key, ()))
    bad = list(AGGREGATE_BAD.get(key, ()))
    if rule.kind in ("integer", "number"):
        low = rule.minimum if rule.minimum is not None else -2
        good = [str(int(low)), str(int(low) + 3)]
        if rule.kind == "number":
            good.append("%.1f" % (low + 1.5))
        bad = ["twelve"]
    for value in good:
        result.checked += 1
        if rule.check(value) is not None:
            result.detail.append("catalog refuses its own sample %s=%r"
                                 % (key, value))
        error = nova.aggregate_metadata_error(key, value)
        if error:
            result.detail.append("nova's aggregate API refuses %s=%r: %s"
                                 % (key, value, error))
        read = _aggregate_reads(nova, key, value, weighers)
        if read is not True:
            result.detail.append("nova does not read %s=%r: %s"
                                 % (key, value, read))
    for value in bad:
        result.checked += 1
        if rule.check(value) is None:
            result.detail.append("catalog allows %s=%r" % (key, value))
        if _aggregate_reads(nova, key, value, weighers) is True and \
                nova.aggregate_metadata_error(key, value) is None:
            result.detail.append("nova accepts %s=%r that the catalog "
                                 "refuses" % (key, value))
    if result.detail:
        result.status = "mismatch"
    return result


def _aggregate_reads(nova: nova_data.FlavorNova, key: str, value: str,
                     weighers: Dict[str, Any]) -> Any:
    """True if nova's own code reads ``key=value``, else why not."""
    if key == "availability_zone":
        error = nova.az_name_error(value)
        if error:
            return error
        agg = nova.objects.Aggregate(metadata={key: value})
        return True if agg.availability_zone == value else \
            "Aggregate.availability_zone is %r" % agg.availability_zone
    if key == "filter_tenant_id":
        cls = nova.filter_classes()["AggregateMultiTenancyIsolation"]
        host = nova.host_with_metadata({key: value})
        first = value.split(",")[0].strip()
        ok = cls().host_passes(host, nova.request_spec(project_id=first))
        other = cls().host_passes(host, nova.request_spec(
            project_id="another-project"))
        return True if ok and not other else \
            "AggregateMultiTenancyIsolation: own project %s, other %s" % (
                ok, other)
    if key == "instance_type":
        cls = nova.filter_classes()["AggregateTypeAffinityFilter"]
        host = nova.host_with_metadata({key: value})
        first = value.split(",")[0].strip()

        def passes(name: str) -> bool:
            return cls().host_passes(host, nova.request_spec(
                flavor=nova.objects.Flavor(name=name)))
        ok, other = passes(first), passes("another-flavor")
        return True if ok and not other else \
            "AggregateTypeAffinityFilter: own flavor %s, other %s" % (
                ok, other)
    reader = _number_reader(nova, key)
    if reader is not None:
        got = reader(value)
        try:
            wanted = int(value)
        except ValueError:
            return "not an integer (the filter falls back to %r)" % got
        return True if got == wanted else "the filter used %r" % got
    if key in weighers:
        got = abs(weighers[key].weight_multiplier(nova.host_with_metadata(
            {key: value})))
        try:
            wanted = abs(float(value))
        except ValueError:
            return "not a number (the weigher falls back to %r)" % got
        return True if got == wanted else "the weigher used %r" % got
    return "no nova code known to read it"


def _check_aggregates(nova: nova_data.FlavorNova,
                      view: _Catalog) -> List[Result]:
    keys = list(flavor_text.AGGREGATE_TEXT)
    multipliers = flavor_generator.weigher_keys(nova)
    weighers, strays = _weigher_map(nova, multipliers)
    results = [_check_aggregate_key(nova, view, key, weighers)
               for key in keys + multipliers]
    for key in multipliers:
        if key not in weighers:
            results.append(Result(kind="aggregate", name=key,
                                  status="mismatch",
                                  detail=["no nova weigher reads it"]))
    expected = set(keys) | set(multipliers)
    generic = {k for k in view.aggregate_props if k.startswith("trait:")}
    for key in sorted(set(view.aggregate_props) - expected - generic):
        results.append(Result(kind="aggregate", name=key, status="mismatch",
                              namespace=view.aggregate_props[key].namespace,
                              detail=["nova reads no aggregate key %s" % key]))
    if strays:
        results.append(Result(kind="aggregate-weighers", name="(weighers)",
                              status="mismatch", detail=strays))
    filters = nova.filter_classes()
    for name in sorted(n for n in filters if n.startswith("Aggregate")):
        if name in exclusions.EXCLUDED_AGGREGATE_FILTERS:
            results.append(Result(
                kind="aggregate-filter", name=name, status="excluded",
                detail=[exclusions.EXCLUDED_AGGREGATE_FILTERS[name]]))
        elif name in FILTER_KEYS:
            results.append(Result(kind="aggregate-filter", name=name,
                                  status="covered",
                                  detail=["reads %s" % ", ".join(
                                      FILTER_KEYS[name])]))
        else:
            results.append(Result(
                kind="aggregate-filter", name=name, status="mismatch",
                detail=["nova has this aggregate filter; describe its keys "
                        "or exclude it in exclusions.py "
                        "EXCLUDED_AGGREGATE_FILTERS"]))
    for name in sorted((set(exclusions.EXCLUDED_AGGREGATE_FILTERS) |
                        set(FILTER_KEYS)) - set(filters)):
        results.append(Result(kind="aggregate-filter", name=name,
                              status="mismatch",
                              detail=["nova has no such filter any more"]))
    results.append(_check_aggregate_traits(nova, view))
    return results


def _check_aggregate_traits(nova: nova_data.FlavorNova,
                            view: _Catalog) -> Result:
    """``trait:<TRAIT>=required`` isolates aggregates (request filter)."""
    result = Result(kind="aggregate-traits", name="trait:<TRAIT>",
                    status="covered")
    # The request filter queries the database for aggregates whose metadata
    # key starts with 'trait:' and whose value is 'required'; it cannot run
    # without a nova database, so its source is what is checked.
    source = inspect.getsource(nova.isolate_aggregates)
    if "'trait:'" not in source or "value='required'" not in source:
        result.detail.append("nova's isolate_aggregates no longer reads "
                             "trait:<TRAIT>=required")
    keys = {k for k in view.aggregate_props if k.startswith("trait:")}
    image = {k for k in view.image_props if k.startswith("trait:")}
    result.checked = len(keys)
    if not keys or keys != image:
        result.detail.append("aggregate trait: keys must be the image "
                             "traits namespace's (%d vs %d)"
                             % (len(keys), len(image)))
    ns = {view.aggregate_props[k].namespace for k in keys}
    if ns and ns != {generators.TRAITS_NAMESPACE}:
        result.detail.append("aggregate trait: keys come from %s"
                             % sorted(ns))
    result.namespace = ", ".join(sorted(ns))
    if result.detail:
        result.status = "mismatch"
    return result


def _check_volume_types(catalog: catalog_mod.Catalog) -> Result:
    result = Result(kind="volumetype", name=extra_specs.VOLUME_TYPE,
                    status="excluded",
                    detail=["nova 34 reads no volume-type extra specs (it "
                            "uses a volume type only by name or id, for "
                            "block device mappings); nothing to describe"])
    for doc in catalog.documents:
        if extra_specs.VOLUME_TYPE in {a.get("name") for a in
                                       doc.get("resource_type_associations")
                                       or ()}:
            result.status = "mismatch"
            result.detail.append("%s is associated with it"
                                 % doc.get("namespace"))
    return result


@contextlib.contextmanager
def _quiet_nova_warnings() -> Iterator[None]:
    # Nova's filters and weighers log a warning for every value they cannot
    # parse; here those values are fed on purpose.
    logger = logging.getLogger("nova")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def run(catalog: catalog_mod.Catalog) -> List[Result]:
    """Every flavor, twin, aggregate and volume-type result; see module doc."""
    nova = nova_data.FlavorNova()
    view = _Catalog(catalog)
    with _quiet_nova_warnings():
        return _run(nova, view, catalog)


def _run(nova: nova_data.FlavorNova, view: _Catalog,
         catalog: catalog_mod.Catalog) -> List[Result]:
    results = [_check_validator(nova, view, v) for v in nova.all_validators()]
    results += _check_catalog_keys(nova, view)
    results += _check_twins(nova, view)
    results += _check_aggregates(nova, view)
    results.append(_check_volume_types(catalog))
    return results
