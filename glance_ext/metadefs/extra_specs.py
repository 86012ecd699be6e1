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

"""Flavor extra specs as the catalog describes them: names, values, rules.

Nova names some extra specs with parameters (``resources{group}:VCPU``,
``trait{group}:HW_CPU_X86_AVX2``, ``hw:numa_cpus.{num}``,
``capabilities:cpu_info{filter}``), but a metadefs property has one fixed
name.  The catalog therefore describes each such spec by one instance of
its name (no group, NUMA node 0 to 7, no filter) and says in the
description which other forms nova accepts; this module is the one place
that knows those conventions, so that a concrete key such as
``resources_gpu1:VGPU`` or ``hw:numa_cpus.12`` is checked against the
property that describes it.  ``glance-ext metadefs coverage`` compares the
conventions with nova's own parameter patterns, so they cannot drift.

Nothing here imports nova: the same code serves the generator and the
coverage check (which have nova) and any tool that has only the catalog.
"""

import re
from typing import Any, Dict, Mapping, Optional

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import rules as rules_mod

AGGREGATE = "OS::Nova::Aggregate"
VOLUME_TYPE = "OS::Cinder::Volumetype"

# The value each nova name parameter takes in the catalog's property name.
CANONICAL_PARAMETERS: Dict[str, str] = {"group": "", "num": "0",
                                        "filter": ""}
# Nova's pattern for each parameter the conventions cover; coverage fails
# when nova's validators use another one.
PARAMETER_PATTERNS: Dict[str, str] = {
    "group": r"([a-zA-Z0-9_-]{1,64})?",
    "num": r"\d+",
    "filter": r"(:\w+)*",
}
# Other parameter values coverage feeds to nova and to the catalog for each
# parameter, to show both read the same spec under those names.
PARAMETER_SAMPLES: Dict[str, tuple] = {
    "group": ("1", "_gpu", "accel-2_b", "x" * 64),
    "num": ("1", "7", "12", "127"),
    "filter": (":features", ":topology:cores"),
}
# How many numbered copies (name.0 ... name.7) the catalog lists of a
# ``{num}`` spec; enforcement reads .0 as every node up to 127.
NUMBERED_COPIES = 8

_GROUPED = re.compile(r"^(?P<ns>resources|trait)[a-zA-Z0-9_-]{1,64}:")
CAPABILITIES_PREFIX = "capabilities:"

# The keys a metadefs property may constrain a value with.
CONSTRAINT_KEYS = ("type", "enum", "minimum", "maximum", "pattern",
                   "minLength", "maxLength")

# Deprecated specs stay in the catalog (operators meet them on old
# flavors) but say so first, in the title and the description.
DEPRECATED_TITLE_SUFFIX = " (deprecated)"
DEPRECATED_DESCRIPTION_PREFIX = "Deprecated: "


def canonical_name(template: str, parameters: Mapping[str, str]) -> str:
    """A nova name template with each ``{parameter}`` replaced."""
    name = template
    for param, value in parameters.items():
        name = name.replace("{%s}" % param, value)
    return name


def _has_top_level_alternation(pattern: str) -> bool:
    # Scanned by hand because the stdlib's regex parser is private
    # (re._parser); only brackets, classes and escapes matter here.
    depth, in_class, escaped = 0, False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
    return False


def anchored(pattern: str) -> str:
    """``pattern`` anchored, so ``search`` means nova's ``re.fullmatch``.

    Metadefs patterns are JSON-schema patterns (matched anywhere); nova's
    validators match the whole value.  A top-level ``a|b`` needs a group
    around it, otherwise ``^a|b$`` would accept ``ax``.
    """
    if _has_top_level_alternation(pattern):
        return "^(?:%s)$" % pattern
    return "^%s$" % pattern


def spec_constraints(value: Mapping[str, Any]) -> Dict[str, Any]:
    """The metadefs constraints of a nova extra-spec validator's ``value``.

    Nova's validator ``value`` dict holds a Python type (``bool``, ``int``
    or ``str``) and optional ``enum``, ``min``, ``max``, ``pattern``.
    Booleans are written the catalog's one way (nova's strict parser also
    reads yes/no, 1/0...: enforcement accepts those).
    """
    vtype = value.get("type")
    if vtype is bool:
        return {"type": "string", "enum": ["true", "false"]}
    if vtype is int:
        out: Dict[str, Any] = {"type": "integer"}
        if value.get("min") is not None:
            out["minimum"] = value["min"]
        if value.get("max") is not None:
            out["maximum"] = value["max"]
        return out
    if vtype is str:
        out = {"type": "string"}
        if value.get("enum"):
            out["enum"] = [str(v) for v in value["enum"]]
        if value.get("pattern"):
            out["pattern"] = anchored(value["pattern"])
        return out
    raise ValueError("nova extra-spec value type %r is unknown to the "
                     "catalog generator" % (vtype,))


def constraints_of(schema: Mapping[str, Any]) -> Dict[str, Any]:
    """The constraint keys of a catalog property (title and text left out)."""
    return {k: schema[k] for k in CONSTRAINT_KEYS if k in schema}


def is_marked_deprecated(schema: Mapping[str, Any]) -> bool:
    return (str(schema.get("title", "")).endswith(DEPRECATED_TITLE_SUFFIX)
            and str(schema.get("description", "")).startswith(
                DEPRECATED_DESCRIPTION_PREFIX))


class FlavorRules:
    """The catalog's rules for flavor extra-spec keys, parameters resolved.

    ``rule_for`` finds the property that describes a concrete key: the key
    itself, ``name.N`` through ``name.0`` (NUMA nodes), a granular group
    (``resources1:VCPU`` through ``resources:VCPU``) or a nested capability
    (``capabilities:cpu_info:topology:cores`` through the longest described
    head, down to ``capabilities:cpu_info``).
    """

    def __init__(self, catalog: catalog_mod.Catalog,
                 resource_type: str = catalog_mod.FLAVOR):
        self.rules = rules_mod.compile_rules(catalog, resource_type,
                                             advisory=())

    def __len__(self) -> int:
        return len(self.rules)

    def rule_for(self, key: str) -> Optional[rules_mod.Rule]:
        rule = self.rules.rule_for(key)
        if rule is not None:
            return rule
        match = _GROUPED.match(key)
        if match:
            return self.rules.rule_for(match.group("ns") + ":" +
                                       key[match.end():])
        if key.startswith(CAPABILITIES_PREFIX):
            parts = key.split(":")
            while len(parts) > 2:
                parts.pop()
                rule = self.rules.exact.get(":".join(parts))
                if rule is not None:
                    return rule
        return None

    def check(self, key: str, value: Any) -> Optional[str]:
        """None if the catalog allows ``key=value`` (or does not know key)."""
        rule = self.rule_for(key)
        if rule is None:
            return None
        return rule.check(value)
