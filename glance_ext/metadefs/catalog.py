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

"""The metadefs catalog as data: namespace documents and the image keys they define.

Every tool in this package (check, coverage, schema-image, the API filter)
works on the same representation: a list of namespace documents shaped
exactly like a file in ``metadefs/`` and like Glance's
``GET /v2/metadefs/namespaces/<ns>`` answer.  Keeping one shape means the
enforcement in the API is, by construction, the catalog an operator loaded,
and a file can be compared to what Glance serves back without translation.
"""

import dataclasses
import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from glance_ext import shipped
from glance_ext.exceptions import CatalogError

IMAGE = "OS::Glance::Image"
VOLUME = "OS::Cinder::Volume"
FLAVOR = "OS::Nova::Flavor"


@dataclasses.dataclass(frozen=True)
class PropertyDef:
    """One property as seen by one resource type (the prefix applied)."""

    key: str
    name: str
    namespace: str
    schema: Mapping[str, Any]
    source: str


@dataclasses.dataclass
class Catalog:
    """Namespace documents plus where each came from (file path or URL)."""

    documents: List[Dict[str, Any]]
    sources: List[str]

    def namespaces(self) -> List[str]:
        return [doc.get("namespace", "") for doc in self.documents]

    def document(self, namespace: str) -> Optional[Dict[str, Any]]:
        for doc in self.documents:
            if doc.get("namespace") == namespace:
                return doc
        return None

    def properties_for(self, resource_type: str) -> Iterator[PropertyDef]:
        """Yield every property with the key it has on ``resource_type``.

        A namespace can be associated with the same resource type once;
        Glance shows its properties to that type with the association's
        prefix, which is exactly the key nova (or cinder) reads.
        """
        for doc, source in zip(self.documents, self.sources):
            for assoc in doc.get("resource_type_associations") or ():
                if assoc.get("name") != resource_type:
                    continue
                prefix = assoc.get("prefix") or ""
                for name, schema in (doc.get("properties") or {}).items():
                    yield PropertyDef(key=prefix + name, name=name,
                                      namespace=doc.get("namespace", ""),
                                      schema=schema, source=source)


def _reject_duplicate_keys(pairs: Sequence) -> Dict[str, Any]:
    # json.load silently keeps the last of two equal keys; in a catalog that
    # hides a property defined twice, so make it an error.
    result: Dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CatalogError("key %r appears twice in the same JSON object"
                               % key)
        result[key] = value
    return result


def load_document(path: str) -> Dict[str, Any]:
    """Read one namespace file; errors name the file, line and problem."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f, object_pairs_hook=_reject_duplicate_keys)
    except OSError as e:
        raise CatalogError("%s: cannot read: %s" % (path, e.strerror))
    except json.JSONDecodeError as e:
        raise CatalogError("%s: not valid JSON: %s (line %d, column %d)"
                           % (path, e.msg, e.lineno, e.colno))
    except CatalogError as e:
        raise CatalogError("%s: %s" % (path, e))
    if not isinstance(doc, dict):
        raise CatalogError("%s: a namespace file must hold one JSON object, "
                           "found %s" % (path, type(doc).__name__))
    return doc


def catalog_files(directory: str) -> List[str]:
    """The files ``glance-manage db load_metadefs --path DIR`` would load.

    Glance takes every top-level ``*.json`` and ignores sub-directories,
    so the tools look at exactly the same set.
    """
    if not os.path.isdir(directory):
        raise CatalogError("%s: not a directory; pass the metadefs directory "
                           "(e.g. metadefs/)" % directory)
    names = sorted(n for n in os.listdir(directory)
                   if n.endswith(".json")
                   and os.path.isfile(os.path.join(directory, n)))
    if not names:
        raise CatalogError("%s: no *.json namespace files found" % directory)
    return [os.path.join(directory, n) for n in names]


def load_directory(directory: str) -> Catalog:
    paths = catalog_files(directory)
    return Catalog(documents=[load_document(p) for p in paths], sources=paths)


def default_directory() -> str:
    """Where the shipped catalog is (``glance_ext.shipped``).

    An installed wheel carries it inside the package; a development
    checkout uses its top-level ``metadefs/``, the source of truth.
    """
    try:
        return shipped.metadefs_dir()
    except shipped.ShippedDataMissing as exc:
        raise CatalogError(str(exc))
