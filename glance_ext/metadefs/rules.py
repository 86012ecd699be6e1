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

"""Compiled validators for image properties, built once from the catalog.

The API filter checks every image create and update, so the catalog is
turned into plain Python objects ahead of time: one dict lookup per
property key, then a set membership, an ``int()`` or a precompiled regex.
jsonschema would re-interpret the schema on every call and cost far more
than the 0.5 ms budget (see bench/middleware_bench.py).
"""

import dataclasses
import difflib
import re
from typing import (Any, Dict, FrozenSet, List, Mapping, Optional,
                    Sequence, Tuple)

from glance_ext.metadefs import catalog as catalog_mod

# Nova parses flag-like image properties and flavor extra specs with
# oslo.utils strutils.bool_from_string; its flavor validator uses
# strict=True, which accepts exactly these (case-insensitive).  The catalog
# writes booleans one way ("true"/"false"); enforcement accepts what nova
# accepts so that images following nova's own docs (hw_qemu_guest_agent=yes)
# keep working, and rejects the rest, which nova would silently read as false.
TRUE_STRINGS = ("1", "t", "true", "on", "y", "yes")
FALSE_STRINGS = ("0", "f", "false", "off", "n", "no")
BOOLEAN_ENUM = frozenset(("true", "false"))

# Keys numbered per guest NUMA node: nova reads key.0, key.1 ... up to 127.
NUMBERED_SUFFIX = re.compile(r"^(?P<base>.+)\.(?P<n>\d+)$")
NUMBERED_MAX = 128

# Enums longer than this are summarised in error messages (os_distro has
# hundreds of values; a 400 listing all of them helps nobody).
ENUM_LIST_LIMIT = 25


@dataclasses.dataclass(frozen=True)
class Violation:
    key: str
    value: Any
    message: str
    # Advisory: reported (logged, printed) but not refused; see
    # DEFAULT_ADVISORY.
    advisory: bool = False


# Properties whose catalog values are offered, not enforced, by default.
# os_distro: nova reads it as free text and resolves it with the compute
# host's libosinfo, which may be newer than the osinfo-db the catalog list
# was generated from (Debian 12 ships 20221203: no debian12 there), so an
# unknown value is a warning, not an error.
DEFAULT_ADVISORY = ("os_distro",)


@dataclasses.dataclass
class Rule:
    """What one property key accepts."""

    key: str
    namespace: str
    kind: str  # enum | boolean | integer | number | string | other
    enum: FrozenSet[str] = frozenset()
    enum_order: Tuple[str, ...] = ()
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    pattern: Optional["re.Pattern[str]"] = None
    pattern_text: str = ""
    min_length: Optional[int] = None
    max_length: Optional[int] = None
    readonly: bool = False
    advisory: bool = False

    def check(self, value: Any) -> Optional[str]:
        """Return None if ``value`` is allowed, else the reason it is not."""
        if self.readonly:
            # Nova writes these itself on snapshots (through this API);
            # refusing them would break snapshots, so they are documented,
            # not enforced.
            return None
        if not isinstance(value, str):
            # Glance's own schema answers 400 for non-string properties.
            return None
        if self.kind == "boolean":
            if value.lower() in TRUE_STRINGS or value.lower() in FALSE_STRINGS:
                return None
            return ("is not a boolean; allowed: true or false (nova also "
                    "reads 1/0, yes/no, on/off, y/n, t/f)")
        if self.kind == "enum":
            if value in self.enum:
                return None
            return self._enum_message(value)
        if self.kind in ("integer", "number"):
            try:
                number = int(value) if self.kind == "integer" else float(value)
            except ValueError:
                return "is not an %s%s" % (
                    "integer" if self.kind == "integer" else "number",
                    self._range_text(prefix="; allowed: "))
            if ((self.minimum is not None and number < self.minimum) or
                    (self.maximum is not None and number > self.maximum)):
                return "is out of range; allowed: %s" % self._range_text()
            return None
        if self.kind == "string":
            if self.min_length is not None and len(value) < self.min_length:
                return "is shorter than %d characters" % self.min_length
            if self.max_length is not None and len(value) > self.max_length:
                return "is longer than %d characters" % self.max_length
            if self.pattern is not None and not self.pattern.search(value):
                return "does not match the pattern %s" % self.pattern_text
        return None

    def allowed_text(self) -> str:
        """A one-line description of what is allowed (for CLIs and docs)."""
        if self.kind == "boolean":
            return "true or false"
        if self.kind == "enum":
            return self._enum_text()
        if self.kind in ("integer", "number"):
            return "%s %s" % (self.kind, self._range_text() or "")
        if self.pattern is not None:
            return "string matching %s" % self.pattern_text
        return "any string"

    def _range_text(self, prefix: str = "") -> str:
        low, high = self.minimum, self.maximum
        fmt = (lambda x: "%d" % x) if self.kind == "integer" else str
        if low is not None and high is not None:
            text = "%s to %s" % (fmt(low), fmt(high))
        elif low is not None:
            text = ">= %s" % fmt(low)
        elif high is not None:
            text = "<= %s" % fmt(high)
        else:
            return ""
        return prefix + text

    def _enum_text(self) -> str:
        if len(self.enum_order) <= ENUM_LIST_LIMIT:
            return "one of " + ", ".join(self.enum_order)
        return ("one of %d values listed in metadefs namespace %s"
                % (len(self.enum_order), self.namespace))

    def _enum_message(self, value: str) -> str:
        text = "is not allowed; allowed: " + self._enum_text()
        close = difflib.get_close_matches(value, self.enum_order, n=3)
        if close:
            text += " (did you mean %s?)" % " or ".join(close)
        return text


def compile_rule(key: str, namespace: str, schema: Mapping[str, Any]) -> Rule:
    kind = schema.get("type") or "other"
    enum = schema.get("enum")
    rule = Rule(key=key, namespace=namespace, kind=kind,
                readonly=bool(schema.get("readonly", False)))
    if kind == "string" and enum:
        values = tuple(str(v) for v in enum)
        rule.kind = "boolean" if frozenset(values) == BOOLEAN_ENUM else "enum"
        rule.enum = frozenset(values)
        rule.enum_order = values
    elif kind == "boolean":
        rule.kind = "boolean"
    rule.minimum = schema.get("minimum")
    rule.maximum = schema.get("maximum")
    rule.min_length = schema.get("minLength")
    rule.max_length = schema.get("maxLength")
    if schema.get("pattern"):
        rule.pattern_text = schema["pattern"]
        rule.pattern = re.compile(schema["pattern"])
    return rule


class RuleSet:
    """All rules for one resource type, looked up by property key."""

    def __init__(self, exact: Dict[str, Rule], numbered: Dict[str, Rule]):
        self.exact = exact
        self.numbered = numbered

    def __len__(self) -> int:
        return len(self.exact)

    def rule_for(self, key: str) -> Optional[Rule]:
        rule = self.exact.get(key)
        if rule is not None or not self.numbered:
            return rule
        match = NUMBERED_SUFFIX.match(key)
        if match and int(match.group("n")) < NUMBERED_MAX:
            return self.numbered.get(match.group("base"))
        return None

    def check(self, key: str, value: Any) -> Optional[Violation]:
        rule = self.rule_for(key)
        if rule is None:
            return None  # unknown keys pass: nova ignores them too
        reason = rule.check(value)
        if reason is None:
            return None
        return Violation(key=key, value=value, advisory=rule.advisory,
                         message=("Invalid value %r for image property '%s': "
                                  "it %s." % (value, key, reason)))

    def validate(self, properties: Mapping[str, Any]) -> List[Violation]:
        found = []
        for key, value in properties.items():
            violation = self.check(key, value)
            if violation is not None:
                found.append(violation)
        return found


def compile_rules(catalog: "catalog_mod.Catalog",
                  resource_type: str = catalog_mod.IMAGE,
                  advisory: Sequence[str] = DEFAULT_ADVISORY) -> RuleSet:
    """Build the rules a resource type's properties must follow.

    A property ``name.0`` also stands for ``name.1`` ... ``name.127``
    (nova's per-NUMA-node keys), so the catalog needs to list only a few.
    If two namespaces define the same key, the first one wins here;
    ``glance-ext metadefs check`` reports such duplicates.  Keys in
    ``advisory`` give advisory violations (see DEFAULT_ADVISORY).
    """
    exact: Dict[str, Rule] = {}
    numbered: Dict[str, Rule] = {}
    for prop in catalog.properties_for(resource_type):
        if prop.key in exact:
            continue
        rule = compile_rule(prop.key, prop.namespace, prop.schema)
        rule.advisory = prop.key in advisory
        exact[prop.key] = rule
        match = NUMBERED_SUFFIX.match(prop.key)
        if match and match.group("n") == "0":
            numbered.setdefault(match.group("base"), rule)
    return RuleSet(exact, numbered)
