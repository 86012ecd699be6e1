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

"""Derive Glance's ``schema-image.json`` from the catalog.

Glance merges ``schema-image.json`` (found in its config directory) into
its image schema and validates every image create and update against it.
That makes it the enforcement that needs no extra code in Glance's
pipeline, with two limits the API filter (glance_ext.middleware) does not
have: Glance reads the file only at start-up, and image properties are
strings to it, so numeric ranges cannot be expressed (integers become a
pattern) and numbered NUMA keys only for the node numbers the catalog lists.
"""

import json
import os
from typing import Any, Dict, Sequence

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import rules as rules_mod

INTEGER_PATTERN = r"^\s*[+-]?\d+\s*$"
BOOLEAN_PATTERN = "^(?i:%s)$" % "|".join(rules_mod.TRUE_STRINGS +
                                         rules_mod.FALSE_STRINGS)


def property_schema(prop: catalog_mod.PropertyDef,
                    advisory: bool = False) -> Dict[str, Any]:
    rule = rules_mod.compile_rule(prop.key, prop.namespace, prop.schema)
    out: Dict[str, Any] = {"type": "string"}
    if prop.schema.get("title"):
        out["title"] = prop.schema["title"]
    if advisory:
        return out  # Glance cannot warn, only refuse: leave it open
    if rule.kind == "boolean":
        out["pattern"] = BOOLEAN_PATTERN
    elif rule.kind == "enum":
        out["enum"] = list(rule.enum_order)
    elif rule.kind == "integer":
        out["pattern"] = INTEGER_PATTERN
    elif rule.kind == "string":
        for key in ("pattern", "minLength", "maxLength"):
            if key in prop.schema:
                out[key] = prop.schema[key]
    return out


def build(catalog: catalog_mod.Catalog,
          advisory: Sequence[str] = rules_mod.DEFAULT_ADVISORY,
          exclude_prefixes: Sequence[str] = ()) -> Dict[str, Any]:
    """The flat ``{key: schema}`` form Glance 33 accepts.

    Descriptions are left out: Glance quotes the whole property schema in
    its 400 answer, and the catalog's long descriptions would bury the
    reason there (they stay available in the metadefs API).

    Read-only properties are left out: nova writes them on snapshots and
    Glance must keep accepting whatever nova writes.  Advisory properties
    (os_distro by default) are listed without their enum.  Keys starting
    with one of ``exclude_prefixes`` are left out: Glance re-validates its
    whole image schema on every create/update and the cost grows with the
    number of keys (bench/middleware_bench.py), so clouds may leave the
    377 ``trait:`` keys to the API filter.
    """
    result: Dict[str, Any] = {}
    for prop in catalog.properties_for(catalog_mod.IMAGE):
        if prop.key in result or prop.schema.get("readonly"):
            continue
        if any(prop.key.startswith(p) for p in exclude_prefixes):
            continue
        result[prop.key] = property_schema(prop, prop.key in advisory)
    return dict(sorted(result.items()))


def write(catalog: catalog_mod.Catalog, path: str,
          advisory: Sequence[str] = rules_mod.DEFAULT_ADVISORY,
          exclude_prefixes: Sequence[str] = ()) -> int:
    data = build(catalog, advisory, exclude_prefixes)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=4, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)
    return len(data)
