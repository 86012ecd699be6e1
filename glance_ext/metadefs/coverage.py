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

"""``glance-ext metadefs coverage``: is the catalog exactly what nova reads?

The check asks nova itself instead of a copy of its rules: every allowed
value in the catalog is fed through nova's ``ImageMetaProps.from_dict()``
(the parser nova-compute and ``nova-manage image_property set`` use) and
must be accepted; a sample of values the catalog forbids must be refused
wherever nova validates the field.  Flavor (``hw:``) properties are fed
through nova's flavor extra-spec validators the same way.  Run against the
installed nova, any drift after a nova upgrade fails the test suite.

Nova is a tooling/test requirement, not a runtime one: importing it pulls
in eventlet and much more, so it is imported only here and only on demand.
"""

import dataclasses
import uuid
import warnings
from typing import Any, Dict, List, Optional, Tuple

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import exclusions
from glance_ext.metadefs import nova_data
from glance_ext.metadefs import rules as rules_mod

NUMBERED_FIELDS = ("hw_numa_cpus", "hw_numa_mem")
TRAITS_FIELD = "traits_required"
TRAIT_PREFIX = "trait:"
SAMPLE_UUID = str(uuid.UUID(int=0x1234567890abcdef1234567890abcdef))

# Realistic values for properties that have a pattern instead of an enum;
# each must pass both the catalog and nova.
GOOD_SAMPLES: Dict[str, Tuple[str, ...]] = {
    "hw_cpu_realtime_mask": ("^0-1", "0-3,^2"),
    "hw_mem_page_size": ("small", "large", "any", "2048", "2MB", "1GiB"),
    "hw_machine_type": ("q35", "pc-q35-8.2", "virt"),
    "hw_numa_cpus": ("0-1", "0,2,^1", "3"),
    "img_signature_certificate_uuid": (SAMPLE_UUID,),
    "img_hv_requested_version": (">=6.2", "==8.0", ">=6.2,<9.0"),
    "img_signature": ("c2lnbmF0dXJl",),
    "os_admin_user": ("root", "Administrator"),
    "os_command_line": ("console=ttyS0 root=/dev/vda1",),
}
# Values the catalog must refuse; nova must refuse them too where its
# field type validates (enums, integers, CPU specs, version predicates).
BAD_SAMPLES: Dict[str, Tuple[str, ...]] = {
    "hw_cpu_realtime_mask": ("0-1,a", "all"),
    "hw_mem_page_size": ("huge", "2X"),
    "hw_machine_type": ("q35 --no-defaults",),
    "hw_numa_cpus": ("0-x", "one"),
    "img_signature_certificate_uuid": ("not-a-uuid",),
    "img_hv_requested_version": ("six", "6.2"),
    "os_admin_user": ("two words",),
}
BAD_ENUM_VALUE = "not-a-nova-value"
BAD_INTEGER_VALUE = "twelve"
BAD_BOOLEAN_VALUE = "maybe"


NovaUnavailable = nova_data.NovaUnavailable


@dataclasses.dataclass
class Result:
    """The verdict for one nova field, legacy name or flavor extra spec."""

    # field | legacy | flavor | flavor-key | twin | aggregate |
    # aggregate-filter | volumetype
    kind: str
    name: str
    status: str  # covered | excluded | missing | mismatch
    namespace: str = ""
    checked: int = 0
    detail: List[str] = dataclasses.field(default_factory=list)
    deprecated: bool = False  # nova marks the extra spec deprecated

    @property
    def ok(self) -> bool:
        return self.status in ("covered", "excluded")

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Report:
    nova_version: str
    object_version: str
    results: List[Result]

    def fields(self) -> List[Result]:
        return [r for r in self.results if r.kind == "field"]

    @property
    def total(self) -> int:
        return len(self.fields())

    @property
    def covered(self) -> int:
        return sum(1 for r in self.fields() if r.ok)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def flavor_summary(self) -> Dict[str, int]:
        """Counts over nova's extra-spec validators, twins and aggregates."""
        specs = [r for r in self.results if r.kind == "flavor"]
        return {
            "validators": len(specs),
            "deprecated": sum(1 for r in specs if r.deprecated),
            "described": sum(1 for r in specs if r.status == "covered"),
            "excluded": sum(1 for r in specs if r.status == "excluded"),
            "not_ok": sum(1 for r in specs if not r.ok),
            "twins": sum(1 for r in self.results if r.kind == "twin"),
            "aggregate_keys": sum(1 for r in self.results
                                  if r.kind == "aggregate" and r.ok),
            "aggregate_filters_excluded": sum(
                1 for r in self.results
                if r.kind == "aggregate-filter" and r.status == "excluded"),
            "values_fed": sum(r.checked for r in self.results
                              if r.kind in ("flavor", "aggregate")),
        }

    def as_dict(self) -> Dict[str, Any]:
        return {"nova_version": self.nova_version,
                "image_meta_props_version": self.object_version,
                "covered": self.covered, "total": self.total, "ok": self.ok,
                "flavor": self.flavor_summary(),
                "results": [r.as_dict() for r in self.results]}


class _Nova:
    """The few nova entry points the check needs, imported lazily."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                from nova.api.validation.extra_specs import validators
                from nova import exception as nova_exception
                from nova.objects import image_meta
                from nova import version as nova_version
            except ImportError as e:
                raise NovaUnavailable(
                    "cannot import nova (%s): the coverage check feeds "
                    "values through nova's own parser, so it needs nova "
                    "installed in this environment: pip install "
                    "'nova==34.0.0' os-traits (see test-requirements.txt)"
                    % e)
        validators.load_validators()
        self.validators = validators
        self.validation_error = nova_exception.ValidationError
        self.props = image_meta.ImageMetaProps
        self.version = nova_version.version_string()

    def parse(self, props: Dict[str, str]) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.props.from_dict(dict(props))

    def accepts(self, props: Dict[str, str]) -> Optional[str]:
        """None if nova parses ``props``, else nova's error text."""
        try:
            self.parse(props)
        except Exception as e:  # nova raises ValueError, Invalid, ...
            return "%s: %s" % (type(e).__name__, e)
        return None

    def enum_values(self, field: str) -> Optional[List[str]]:
        values = getattr(self.props.fields[field]._type, "_valid_values",
                         None)
        return list(values) if values else None

    def field_kind(self, field: str) -> str:
        return type(self.props.fields[field]).__name__


def _rule_map(catalog: catalog_mod.Catalog) -> rules_mod.RuleSet:
    return rules_mod.compile_rules(catalog, catalog_mod.IMAGE)


def _good_values(field: str, rule: rules_mod.Rule) -> List[str]:
    if rule.kind == "boolean":
        return ["true", "false"]
    if rule.kind == "enum":
        return list(rule.enum_order)
    if rule.kind == "integer":
        low = int(rule.minimum) if rule.minimum is not None else 1
        values = [str(low)]
        if rule.maximum is not None:
            values.append(str(int(rule.maximum)))
        return values
    return list(GOOD_SAMPLES.get(field, ()))


def _bad_values(field: str, rule: rules_mod.Rule) -> List[str]:
    if rule.kind == "boolean":
        return [BAD_BOOLEAN_VALUE]
    if rule.kind == "enum":
        return [BAD_ENUM_VALUE, rule.enum_order[0] + "-x"]
    if rule.kind == "integer":
        values = [BAD_INTEGER_VALUE]
        if rule.minimum is not None:
            values.append(str(int(rule.minimum) - 1))
        if rule.maximum is not None:
            values.append(str(int(rule.maximum) + 1))
        return values
    return list(BAD_SAMPLES.get(field, ()))


def _nova_validates_type(kind: str) -> bool:
    """Whether nova's field type refuses malformed strings by itself."""
    return kind not in ("StringField", "FlexibleBooleanField", "UUIDField",
                        "ListOfDictOfNullableStringsField")


def _check_values(nova: _Nova, result: Result, key: str, field: str,
                  rule: rules_mod.Rule, nova_kind: str) -> None:
    """Feed allowed and forbidden values to the catalog rule and to nova."""
    good = _good_values(field, rule)
    if not good:
        result.detail.append("no sample value to feed for %s; add one to "
                             "GOOD_SAMPLES" % key)
    for value in good:
        result.checked += 1
        if rule.check(value) is not None:
            result.detail.append("catalog refuses its own sample %r for %s"
                                 % (value, key))
        error = nova.accepts({key: value})
        if error:
            result.detail.append("nova refuses %s=%r that the catalog allows: "
                                 "%s" % (key, value, error))
    for value in _bad_values(field, rule):
        result.checked += 1
        if rule.check(value) is None:
            result.detail.append("catalog allows %s=%r" % (key, value))
        if rule.kind in ("integer",) and value != BAD_INTEGER_VALUE:
            continue  # ranges are the catalog's (nova's int field has none)
        if _nova_validates_type(nova_kind) and nova.accepts({key: value}) \
                is None:
            result.detail.append("nova accepts %s=%r that the catalog "
                                 "refuses" % (key, value))


def _expected_kind(nova_kind: str) -> Tuple[str, ...]:
    if nova_kind == "FlexibleBooleanField":
        return ("boolean",)
    if nova_kind == "IntegerField" or nova_kind == "ListOfIntegersField":
        return ("integer",)
    if nova_kind.endswith("Field") and nova_kind not in (
            "StringField", "UUIDField", "VersionPredicateField",
            "ListOfSetsOfIntegersField", "ListOfDictOfNullableStringsField",
            "ListOfStringsField"):
        return ("enum",)
    return ("string", "enum")


def _check_field(nova: _Nova, rules: rules_mod.RuleSet, field: str,
                 key: str, kind: str, target: str) -> Result:
    """Compare the catalog's rule for ``key`` with nova's field ``target``."""
    result = Result(kind=kind, name=key, status="covered")
    rule = rules.exact.get(key)
    if rule is None:
        result.status = "missing"
        result.detail.append("not described for OS::Glance::Image")
        return result
    result.namespace = rule.namespace
    nova_kind = nova.field_kind(target)
    if target in exclusions.SNAPSHOT_FIELDS or (
            nova_kind == "ListOfDictOfNullableStringsField"):
        if not rule.readonly:
            result.detail.append("nova writes %s on snapshots; mark it "
                                 "\"readonly\": true" % key)
        result.checked += 1
    else:
        if rule.kind not in _expected_kind(nova_kind):
            result.detail.append("catalog kind %s, nova field %s expects %s"
                                 % (rule.kind, nova_kind,
                                    " or ".join(_expected_kind(nova_kind))))
        nova_enum = nova.enum_values(target)
        if nova_enum is not None:
            catalog_enum = sorted(rule.enum)
            if catalog_enum != sorted(nova_enum):
                missing = sorted(set(nova_enum) - rule.enum)
                extra = sorted(rule.enum - set(nova_enum))
                result.detail.append(
                    "enum differs from nova's: missing %s, extra %s"
                    % (missing or "none", extra or "none"))
        _check_values(nova, result, key, field, rule, nova_kind)
        if rule.kind == "boolean":
            parsed = nova.parse({key: "true"}).get(target)
            if parsed is not True:
                result.detail.append("nova reads %s=true as %r" % (key,
                                                                   parsed))
    if result.detail:
        result.status = "mismatch"
    return result


def _check_numbered(nova: _Nova, rules: rules_mod.RuleSet,
                    field: str) -> Result:
    result = Result(kind="field", name=field, status="covered")
    rule = rules.numbered.get(field)
    if rule is None:
        result.status = "missing"
        result.detail.append("no %s.0 property (nova reads %s.N per guest "
                             "NUMA node)" % (field, field))
        return result
    result.namespace = rule.namespace
    nova_kind = ("IntegerField" if field == "hw_numa_mem"
                 else "ListOfSetsOfIntegersField")
    for node in (0, 1, 7, 12):
        key = "%s.%d" % (field, node)
        if rules.rule_for(key) is None:
            result.detail.append("enforcement has no rule for %s" % key)
    _check_values(nova, result, field + ".0", field, rule, nova_kind)
    # nova keeps node order and stops at the first gap
    parsed = nova.parse({field + ".0": _good_values(field, rule)[0],
                         field + ".1": _good_values(field, rule)[0]})
    if len(parsed.get(field) or ()) != 2:
        result.detail.append("nova did not read two nodes from %s.0/%s.1"
                             % (field, field))
    if result.detail:
        result.status = "mismatch"
    return result


def _check_traits(nova: _Nova, catalog: catalog_mod.Catalog) -> Result:
    result = Result(kind="field", name=TRAITS_FIELD, status="covered")
    try:
        import os_traits
    except ImportError:
        result.status = "missing"
        result.detail.append("os-traits is not installed; pip install "
                             "os-traits")
        return result
    trait_props = {p.key: p for p in catalog.properties_for(catalog_mod.IMAGE)
                   if p.key.startswith(TRAIT_PREFIX)}
    if not trait_props:
        result.status = "missing"
        result.detail.append("no properties with prefix trait: for images")
        return result
    result.namespace = next(iter(trait_props.values())).namespace
    expected = {TRAIT_PREFIX + t for t in os_traits.get_traits()}
    missing = sorted(expected - set(trait_props))
    extra = sorted(set(trait_props) - expected)
    if missing:
        result.detail.append("%d os-traits traits not described, e.g. %s"
                             % (len(missing), ", ".join(missing[:5])))
    if extra:
        result.detail.append("%d trait properties unknown to os-traits, "
                             "e.g. %s" % (len(extra), ", ".join(extra[:5])))
    for key, prop in sorted(trait_props.items()):
        result.checked += 1
        if prop.schema.get("enum") != ["required"]:
            result.detail.append("%s: enum must be [\"required\"] (the only "
                                 "value nova reads)" % key)
    sample = sorted(trait_props)[:50]
    parsed = nova.parse({k: "required" for k in sample})
    got = sorted(parsed.get(TRAITS_FIELD) or ())
    if got != sorted(k[len(TRAIT_PREFIX):] for k in sample):
        result.detail.append("nova did not read the sampled traits as "
                             "required: got %s" % got[:5])
    forbidden = nova.parse({sample[0]: "forbidden"}).get(TRAITS_FIELD)
    if forbidden:
        result.detail.append("nova now reads trait values other than "
                             "'required'; revisit the enum")
    if result.detail:
        result.status = "mismatch"
    return result


def run(catalog: catalog_mod.Catalog, flavor: bool = True) -> Report:
    """Check the catalog against the installed nova; see the module doc.

    ``flavor=False`` leaves out the flavor/aggregate part (most of the
    time: it feeds several thousand values), for checks of the image side.
    """
    nova = _Nova()
    rules = _rule_map(catalog)
    results: List[Result] = []
    for field in sorted(nova.props.fields):
        if field in exclusions.EXCLUDED_FIELDS:
            result = Result(kind="field", name=field, status="excluded",
                            detail=[exclusions.EXCLUDED_FIELDS[field]])
            if field in rules.exact:
                result.status = "mismatch"
                result.detail.append("excluded but also in the catalog (%s)"
                                     % rules.exact[field].namespace)
        elif field in NUMBERED_FIELDS:
            result = _check_numbered(nova, rules, field)
        elif field == TRAITS_FIELD:
            result = _check_traits(nova, catalog)
        else:
            result = _check_field(nova, rules, field, field, "field", field)
        results.append(result)
    for stale in sorted(set(exclusions.EXCLUDED_FIELDS) -
                        set(nova.props.fields)):
        results.append(Result(kind="field", name=stale, status="mismatch",
                              detail=["excluded, but nova has no such field "
                                      "any more; drop it from exclusions"]))
    legacy_map = nova.props._legacy_property_map
    for legacy, target in sorted(legacy_map.items()):
        if legacy in exclusions.EXCLUDED_LEGACY_NAMES:
            result = Result(kind="legacy", name=legacy, status="excluded",
                            detail=[exclusions.EXCLUDED_LEGACY_NAMES[legacy]])
            if legacy in rules.exact:
                result.status = "mismatch"
                result.detail.append("excluded but also in the catalog")
        else:
            result = _check_field(nova, rules, target, legacy, "legacy",
                                  target)
            if result.ok:
                result.detail.append("legacy name of %s" % target)
        results.append(result)
    for legacy in exclusions.REQUIRED_LEGACY_NAMES:
        if legacy not in legacy_map:
            results.append(Result(kind="legacy", name=legacy,
                                  status="mismatch",
                                  detail=["nova no longer reads this legacy "
                                          "name"]))
    # The flavor side (extra specs, twins, aggregates) is its own module;
    # imported here because it builds on this one's Result.
    if flavor:
        from glance_ext.metadefs import flavor_coverage
        results += flavor_coverage.run(catalog)
    object_version = getattr(nova.props, "VERSION", "?")
    return Report(nova_version=nova.version, object_version=object_version,
                  results=results)
