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

"""Operator rules: static and conditional properties, from a file.

A rules file is a YAML or JSON list (or ``{"rules": [...]}``) of::

    - when:                         # optional; every condition must hold
        os_type: windows            # a value or a list of values (any of)
        disk_format: [qcow2, raw]
        project: [p1, p2]
        roles: [admin]              # the caller has any of these roles
        visibility: public
      set:
        hw_disk_bus: sata
        os_admin_user: "{os.distro}-admin"   # templated, see templating
      override_user: false          # true: replace a value the user set

Everything is checked when the file is loaded (each import): unknown
fields and conditions, keys the plugin cannot set, template names, and
every literal value against the metadefs catalog; templated values are
checked after rendering. Problems are ``RuleError`` naming the rule
(1-based) and what to fix.
"""

import dataclasses
import json
import os
from typing import Any, Dict, FrozenSet, List, Optional, Sequence

import yaml

from glance_ext.injection import facts as facts_mod
from glance_ext.injection import templating
from glance_ext.metadefs import rules as md_rules
from glance_ext.exceptions import RuleError

# condition -> how a Facts value is matched.
CONDITIONS = ("os_type", "os_distro", "os_version", "architecture",
              "firmware", "disk_format", "project", "roles", "visibility")
RULE_FIELDS = ("when", "set", "override_user", "description")

# Image attributes that are not extra properties: the import flow has no
# API to change them (and Glance would refuse them as properties).
CORE_ATTRIBUTES = frozenset((
    "id", "name", "status", "visibility", "protected", "os_hidden", "owner",
    "tags", "min_disk", "min_ram", "disk_format", "container_format",
    "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
    "created_at", "updated_at", "locations", "direct_url", "self", "file",
    "schema", "stores"))
# Glance silently drops these from set_image_extra_properties.
RESERVED_PREFIX = "os_glance"
# The plugins' own records (check results, verdicts): never from a rule.
OWN_PREFIX = "glance_ext_"


@dataclasses.dataclass(frozen=True)
class Rule:
    number: int                              # 1-based, for messages
    when: Dict[str, FrozenSet[str]]
    set: Dict[str, str]
    override_user: bool = False
    origin: str = "rule"                     # "rule N" or "static"

    @property
    def label(self) -> str:
        return self.origin if self.origin != "rule" else \
            "rule %d" % self.number

    def matches(self, facts: facts_mod.Facts) -> bool:
        for name, wanted in self.when.items():
            if name == "roles":
                if not facts.roles & wanted:
                    return False
                continue
            if name == "os_distro":
                have = {facts.distro, facts.family, facts.osinfo_id}
            else:
                have = {_FACT_OF[name](facts)}
            if not (have - {None}) & wanted:
                return False
        return True

    def render(self, facts: facts_mod.Facts
               ) -> "tuple[Dict[str, str], List[str]]":
        """(properties, skipped notes) for this image."""
        values = facts.variables()
        out, skipped = {}, []
        for key, template in self.set.items():
            try:
                out[key] = templating.render(template, values)
            except templating.MissingValue as exc:
                skipped.append("%s: %s not set: {%s} is unknown for this "
                               "image" % (self.label, key, exc.name))
        return out, skipped


_FACT_OF = {
    "os_type": lambda f: f.os_type,
    "os_version": lambda f: f.version,
    "architecture": lambda f: f.architecture,
    "firmware": lambda f: f.firmware,
    "disk_format": lambda f: f.disk_format,
    "project": lambda f: f.project,
    "visibility": lambda f: f.visibility,
}


def _as_text(value: Any, where: str) -> str:
    # YAML reads `true` and `2` as bool and int; properties are strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    raise RuleError("%s: %r is a %s; use a string"
                    % (where, value, type(value).__name__))


def check_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise RuleError("%s: property name %r must be a non-empty string"
                        % (where, key))
    if key.startswith(RESERVED_PREFIX):
        raise RuleError("%s sets %s: keys starting with %s are reserved "
                        "for Glance and would be dropped"
                        % (where, key, RESERVED_PREFIX))
    if key.startswith(OWN_PREFIX):
        raise RuleError("%s sets %s: keys starting with %s are the records "
                        "of glance_ext's plugins" % (where, key, OWN_PREFIX))
    if key in CORE_ATTRIBUTES:
        raise RuleError("%s sets %s: that is an image attribute, not an "
                        "extra property; an import plugin cannot set it"
                        % (where, key))
    return key


def check_value(ruleset: md_rules.RuleSet, where: str, key: str,
                value: str) -> None:
    """RuleError when the catalog refuses ``key=value`` (advisory passes)."""
    rule = ruleset.rule_for(key)
    if rule is None or rule.advisory:
        return
    reason = rule.check(value)
    if reason is not None:
        raise RuleError("%s sets %s=%s: it %s (metadefs namespace %s)"
                        % (where, key, value, reason, rule.namespace))


def _parse_rule(number: int, raw: Any,
                ruleset: md_rules.RuleSet) -> Rule:
    where = "rule %d" % number
    if not isinstance(raw, dict):
        raise RuleError("%s: a rule is a mapping with 'set' (and optional "
                        "'when', 'override_user'), not %s"
                        % (where, type(raw).__name__))
    unknown = sorted(set(raw) - set(RULE_FIELDS))
    if unknown:
        raise RuleError("%s: unknown field(s) %s; known: %s"
                        % (where, ", ".join(map(str, unknown)),
                           ", ".join(RULE_FIELDS)))
    when_raw = raw.get("when") or {}
    if not isinstance(when_raw, dict):
        raise RuleError("%s: 'when' must be a mapping of condition -> value "
                        "or list" % where)
    when: Dict[str, FrozenSet[str]] = {}
    for name, wanted in when_raw.items():
        if name not in CONDITIONS:
            raise RuleError("%s: unknown condition %r; known: %s"
                            % (where, name, ", ".join(CONDITIONS)))
        items = wanted if isinstance(wanted, list) else [wanted]
        if not items:
            raise RuleError("%s: condition %s has an empty list (it could "
                            "never match)" % (where, name))
        when[name] = frozenset(_as_text(v, "%s condition %s" % (where, name))
                               for v in items)
    set_raw = raw.get("set")
    if not isinstance(set_raw, dict) or not set_raw:
        raise RuleError("%s: 'set' must be a non-empty mapping of property "
                        "-> value" % where)
    override = raw.get("override_user", False)
    if not isinstance(override, bool):
        raise RuleError("%s: override_user must be true or false" % where)
    props = build_set(set_raw, where, ruleset)
    return Rule(number=number, when=when, set=props, override_user=override)


def build_set(set_raw: Dict[Any, Any], where: str,
              ruleset: md_rules.RuleSet) -> Dict[str, str]:
    """Checked ``set`` mapping: keys, template names, literal values."""
    props: Dict[str, str] = {}
    for key, value in set_raw.items():
        key = check_key(key, where)
        text = _as_text(value, "%s value of %s" % (where, key))
        if templating.is_template(text):
            try:
                templating.variables_used(text)
            except templating.TemplateError as exc:
                raise RuleError("%s sets %s: %s" % (where, key, exc))
        else:
            check_value(ruleset, where, key, text)
        props[key] = text
    return props


def parse_rules(data: Any, ruleset: md_rules.RuleSet) -> List[Rule]:
    if isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise RuleError("the rules file must hold a list of rules (or "
                        "{rules: [...]}), not %s" % type(data).__name__)
    return [_parse_rule(i, raw, ruleset) for i, raw in enumerate(data, 1)]


def load_file(path: str, ruleset: md_rules.RuleSet) -> List[Rule]:
    """Rules from a YAML or JSON file (JSON is YAML, but its errors are
    clearer from the json module, so ``.json`` files use it)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise RuleError("cannot read rules_file %s: %s"
                        % (path, exc.strerror or exc))
    try:
        if os.path.splitext(path)[1].lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise RuleError("rules_file %s is not valid %s: %s" % (
            path, "JSON" if path.lower().endswith(".json") else "YAML",
            str(exc).replace("\n", " ")))
    return parse_rules(data, ruleset)


def static_rule(props: Dict[str, str],
                ruleset: md_rules.RuleSet) -> Optional[Rule]:
    """``static_properties`` as a rule without conditions."""
    if not props:
        return None
    checked = build_set(dict(props), "static_properties", ruleset)
    return Rule(number=0, when={}, set=checked, origin="static_properties")


def evaluate(rules: Sequence[Rule], facts: facts_mod.Facts
             ) -> "List[tuple[Rule, tuple[Dict[str, str], List[str]]]]":
    """Each rule that applies, in order, with ``Rule.render``'s result:
    (properties, notes on templated keys skipped for lack of a value)."""
    return [(rule, rule.render(facts)) for rule in rules
            if rule.matches(facts)]
