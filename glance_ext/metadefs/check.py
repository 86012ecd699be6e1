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

"""``glance-ext metadefs check``: what Glance's loader never checks.

``glance-manage db load_metadefs`` stores whatever it is given; a property
without a title then makes the API answer 500 for the whole namespace, and
two namespaces may give one image key two different enums.  This module
finds those problems before the files reach a database, with one precise
message per problem (file, JSON path, what is wrong, what to do).
"""

import collections
import dataclasses
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional

from glance_ext.exceptions import ToolUnavailable
from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import extra_specs
from glance_ext.metadefs import rules as rules_mod

ERROR = "error"
WARNING = "warning"

# Glance stores property names in a VARCHAR(80) column.
MAX_NAME_LENGTH = 80
CONSTRAINT_KEYS = ("type", "enum", "minimum", "maximum", "pattern",
                   "minLength", "maxLength", "readonly", "items")
RESOURCE_TYPE_NAME = re.compile(r"^OS::[A-Za-z0-9]+::[A-Za-z0-9]+$")


@dataclasses.dataclass(frozen=True)
class Problem:
    severity: str
    source: str
    where: str
    message: str

    def __str__(self) -> str:
        where = ": %s" % self.where if self.where else ""
        return "%s: %s%s: %s" % (self.severity, self.source, where,
                                 self.message)


def _glance_namespace_schema() -> Dict[str, Any]:
    """Glance's own namespace schema (what POST /v2/metadefs/namespaces uses)."""
    # The one read of Glance this engine makes: the schema Glance's API
    # validates namespaces with (no Glance state is touched).
    try:
        from glance.api.v2 import metadef_namespaces
    except ImportError as e:
        raise ToolUnavailable(
            tool="the namespace check", reason="glance cannot be imported "
            "(%s)" % e, fix="run it in Glance's Python environment, where "
            "glance_ext is installed")
    return metadef_namespaces.get_schema().raw()


def _schema_problems(doc: Mapping[str, Any], source: str,
                     schema: Mapping[str, Any]) -> List[Problem]:
    import jsonschema
    validator = jsonschema.Draft4Validator(
        schema, format_checker=jsonschema.FormatChecker())
    found = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        found.append(Problem(ERROR, source, where,
                             "does not follow Glance's namespace schema: %s"
                             % err.message))
    return found


def _property_problems(name: str, prop: Any, source: str,
                       where: str) -> List[Problem]:
    found = []

    def bad(message: str) -> None:
        found.append(Problem(ERROR, source, where, message))

    if not isinstance(prop, dict):
        bad("a property must be a JSON object")
        return found
    if not str(prop.get("title") or "").strip():
        bad("no title; every property needs one (Glance's API answers 500 "
            "for a namespace with an untitled property)")
    if not str(prop.get("description") or "").strip():
        found.append(Problem(WARNING, source, where,
                             "no description; operators need to know what "
                             "the property does"))
    if len(name) > MAX_NAME_LENGTH:
        bad("name is %d characters; Glance stores at most %d"
            % (len(name), MAX_NAME_LENGTH))
    ptype = prop.get("type")
    enum = prop.get("enum")
    if enum is not None:
        if not isinstance(enum, list) or not enum:
            bad("enum must be a non-empty list")
        else:
            dupes = sorted(v for v, n in collections.Counter(
                map(str, enum)).items() if n > 1)
            if dupes:
                bad("enum lists %s more than once" % ", ".join(dupes))
            if ptype == "string" and not all(isinstance(v, str)
                                             for v in enum):
                bad("enum of a string property must hold only strings "
                    "(image properties are strings)")
    if prop.get("pattern") is not None:
        try:
            re.compile(prop["pattern"])
        except (re.error, TypeError) as e:
            bad("pattern %r is not a valid regular expression: %s"
                % (prop.get("pattern"), e))
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is not None and high is not None and low > high:
        bad("minimum %s is above maximum %s" % (low, high))
    if ptype == "boolean":
        found.append(Problem(WARNING, source, where,
                             "type boolean: this catalog writes booleans as "
                             "type string with enum [\"true\", \"false\"]"))
    other_booleans = {"True", "False", "yes", "no"}
    if enum and ptype == "string" and set(map(str, enum)) & other_booleans:
        bad("booleans are written one way: enum [\"true\", \"false\"]")
    if "default" in prop and enum and prop["default"] not in enum:
        bad("default %r is not in the enum" % (prop["default"],))
    return found


def _document_problems(doc: Mapping[str, Any], source: str) -> List[Problem]:
    found = []
    for name, prop in (doc.get("properties") or {}).items():
        found += _property_problems(name, prop, source, "properties/" + name)
    for i, obj in enumerate(doc.get("objects") or ()):
        for name, prop in ((obj or {}).get("properties") or {}).items():
            found += _property_problems(
                name, prop, source, "objects/%d(%s)/properties/%s"
                % (i, (obj or {}).get("name"), name))
    found += _association_problems(doc, source)
    return found


def _association_problems(doc: Mapping[str, Any],
                          source: str) -> List[Problem]:
    found = []
    assocs = {}
    for i, assoc in enumerate(doc.get("resource_type_associations") or ()):
        where = "resource_type_associations/%d" % i
        name = (assoc or {}).get("name", "")
        if not RESOURCE_TYPE_NAME.match(name or ""):
            found.append(Problem(ERROR, source, where,
                                 "resource type %r is not of the form "
                                 "OS::<Service>::<Type>" % name))
        if name in assocs:
            found.append(Problem(ERROR, source, where,
                                 "%s is associated twice" % name))
        assocs[name] = assoc or {}
        prefix = (assoc or {}).get("prefix") or ""
        if prefix.startswith("traits:"):
            found.append(Problem(ERROR, source, where,
                                 "prefix 'traits:' is never read by nova; "
                                 "nova reads trait:<NAME>=required"))
        if name == extra_specs.AGGREGATE and prefix.startswith(
                "aggregate_instance_extra_specs:"):
            # Glance's own OS::Compute::HostCapabilities does this; the
            # prefix belongs to the flavor key, the aggregate key is bare.
            found.append(Problem(
                ERROR, source, where,
                "aggregate metadata keys have no prefix: "
                "AggregateInstanceExtraSpecsFilter matches the flavor spec "
                "aggregate_instance_extra_specs:<key> against aggregate "
                "metadata <key>; use that prefix on OS::Nova::Flavor and "
                "none on OS::Nova::Aggregate"))
    volume = assocs.get(catalog_mod.VOLUME)
    image = assocs.get(catalog_mod.IMAGE)
    if volume is not None:
        if volume.get("properties_target") != "image":
            found.append(Problem(
                ERROR, source, "resource_type_associations",
                "OS::Cinder::Volume needs \"properties_target\": \"image\": "
                "nova reads these keys from the volume's image metadata"))
        if image is not None and (volume.get("prefix") or "") != (
                image.get("prefix") or ""):
            found.append(Problem(
                ERROR, source, "resource_type_associations",
                "OS::Cinder::Volume prefix %r differs from OS::Glance::Image "
                "prefix %r; volume image metadata uses the image keys"
                % (volume.get("prefix"), image.get("prefix"))))
    flavor = assocs.get(catalog_mod.FLAVOR)
    if flavor is not None and image is not None:
        iprefix, fprefix = image.get("prefix") or "", flavor.get("prefix") or ""
        # nova reads hw_<name> from images and hw:<name> from flavors.
        if iprefix == "hw_" and fprefix != "hw:":
            found.append(Problem(
                ERROR, source, "resource_type_associations",
                "image prefix %r goes with flavor extra-spec prefix %r, not "
                "%r" % (iprefix, iprefix[:-1] + ":", fprefix)))
    return found


def _constraints(schema: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: schema[k] for k in CONSTRAINT_KEYS if k in schema}


def _describe_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    diffs = []
    for key in CONSTRAINT_KEYS:
        if a.get(key) != b.get(key):
            diffs.append("%s %r vs %r" % (key, a.get(key), b.get(key)))
    return "; ".join(diffs)


def duplicate_problems(catalog: catalog_mod.Catalog,
                       resource_types: Iterable[str]) -> List[Problem]:
    """Keys defined more than once for a resource type.

    Different constraints are an error (which one would apply?); identical
    repeats are a warning.  Numbered NUMA keys (name.0, name.1, ...) must
    all carry the same constraints, since enforcement applies one rule to
    every node number.
    """
    found = []
    for rtype in resource_types:
        by_key = collections.defaultdict(list)
        families = collections.defaultdict(list)
        for prop in catalog.properties_for(rtype):
            by_key[prop.key].append(prop)
            match = rules_mod.NUMBERED_SUFFIX.match(prop.key)
            if match:
                families[match.group("base")].append(prop)
        for key, props in sorted(by_key.items()):
            if len(props) < 2:
                continue
            first = props[0]
            for other in props[1:]:
                where = "%s key %s" % (rtype, key)
                if _constraints(first.schema) != _constraints(other.schema):
                    found.append(Problem(
                        ERROR, other.source, where,
                        "also defined in %s (%s) with different constraints: "
                        "%s; keep one definition"
                        % (first.namespace, first.source, _describe_difference(
                            first.schema, other.schema))))
                else:
                    found.append(Problem(
                        WARNING, other.source, where,
                        "also defined, identically, in %s (%s)"
                        % (first.namespace, first.source)))
        for base, props in sorted(families.items()):
            first = props[0]
            for other in props[1:]:
                if _constraints(first.schema) != _constraints(other.schema):
                    found.append(Problem(
                        ERROR, other.source, "%s key %s" % (rtype, other.key),
                        "numbered keys of %s must share one definition; "
                        "differs from %s: %s" % (base, first.key,
                                                 _describe_difference(
                                                     first.schema,
                                                     other.schema))))
    return found


def check_catalog(catalog: catalog_mod.Catalog,
                  schema: Optional[Mapping[str, Any]] = None) -> List[Problem]:
    if schema is None:
        schema = _glance_namespace_schema()
    found = []
    seen: Dict[str, str] = {}
    for doc, source in zip(catalog.documents, catalog.sources):
        found += _schema_problems(doc, source, schema)
        found += _document_problems(doc, source)
        name = doc.get("namespace")
        if name in seen:
            found.append(Problem(ERROR, source, "namespace",
                                 "namespace %r is also defined in %s; "
                                 "glance-manage would skip one of them"
                                 % (name, seen[name])))
        elif name:
            seen[name] = source
    rtypes = sorted({a.get("name") for d in catalog.documents
                     for a in d.get("resource_type_associations") or ()
                     if a.get("name")})
    found += duplicate_problems(catalog, rtypes)
    return found


def check_directory(directory: str) -> List[Problem]:
    """Load and check a catalog directory; unreadable files are problems too."""
    paths = catalog_mod.catalog_files(directory)
    docs, sources, found = [], [], []
    for path in paths:
        try:
            docs.append(catalog_mod.load_document(path))
            sources.append(path)
        except catalog_mod.CatalogError as e:
            found.append(Problem(ERROR, path, "", str(e).split(": ", 1)[-1]))
    return found + check_catalog(catalog_mod.Catalog(docs, sources))
