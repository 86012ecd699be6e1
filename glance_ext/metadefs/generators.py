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

"""Generated parts of the catalog: os_distro values and trait properties.

Both lists are long and change with their upstream data (osinfo-db
releases, os-traits releases), so they are produced by code from that data
and the result is committed as JSON; a unit test regenerates them and fails
when the committed files drift from the installed data.
"""

import glob
import json
import os
import xml.etree.ElementTree as ElementTree
from typing import Any, Dict, Iterable, List, Optional

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import extra_specs
from glance_ext.exceptions import GeneratorError

OSINFO_DIR = "/usr/share/osinfo"
GUEST_OS_FILE = "nova-guest-os.json"
TRAITS_FILE = "nova-traits.json"
TRAITS_NAMESPACE = "GlanceExt::Nova::Traits"

# The os_distro family names of Glance's "Useful image properties" guide.
# Nova's libosinfo lookup does not resolve them (it wants short-ids), but
# other consumers (Horizon, billing, scripts) group images by them, so the
# catalog keeps offering them next to the short-ids.
FAMILY_NAMES = (
    "arch", "centos", "debian", "fedora", "freebsd", "gentoo", "mandrake",
    "mandriva", "mes", "msdos", "netbsd", "netware", "openbsd",
    "opensolaris", "opensuse", "rhel", "rocky", "sled", "ubuntu", "windows",
)


def osinfo_short_ids(osinfo_dir: str = OSINFO_DIR) -> List[str]:
    """Every ``<short-id>`` of every ``<os>`` in an osinfo-db tree.

    Nova's libvirt driver filters libosinfo's OS list on ``short-id``
    (nova/virt/osinfo.py), so these are exactly the values it resolves.
    """
    paths = sorted(glob.glob(os.path.join(osinfo_dir, "os", "*", "*.xml")))
    if not paths:
        raise GeneratorError(
            "no osinfo-db OS files under %s/os; install the Debian package "
            "osinfo-db (apt-get install osinfo-db) or pass --osinfo-dir"
            % osinfo_dir)
    ids = set()
    for path in paths:
        root = ElementTree.parse(path).getroot()
        for os_elem in root.iter("os"):
            for short in os_elem.findall("short-id"):
                if short.text and short.text.strip():
                    ids.add(short.text.strip())
    return sorted(ids)


def osinfo_version(osinfo_dir: str = OSINFO_DIR) -> str:
    try:
        with open(os.path.join(osinfo_dir, "VERSION")) as f:
            return f.read().strip() or "unknown"
    except OSError:
        return "unknown"


OS_DISTRO_DESCRIPTION = (
    "The guest's libosinfo short-id, e.g. ubuntu22.04, rhel9.0, debian11, "
    "win2k22 (see `osinfo-query os`). Nova's libvirt driver looks it up in "
    "the compute host's libosinfo to pick the best disk bus and NIC model; "
    "the family names (ubuntu, windows...) are offered for other tools but "
    "never resolve there. Generated from osinfo-db %s by "
    "tools/generate_os_distro_ids.py; newer distributions known to the "
    "hosts' libosinfo are valid too (enforcement treats os_distro as "
    "advisory by default).")


def os_distro_values(short_ids: Iterable[str]) -> List[str]:
    return sorted(set(short_ids) | set(FAMILY_NAMES))


def trait_names() -> List[str]:
    try:
        import os_traits
    except ImportError:
        raise GeneratorError("the os-traits package is not installed; "
                             "pip install os-traits")
    return sorted(os_traits.get_traits())


def trait_namespace(traits: Iterable[str]) -> Dict[str, Any]:
    """The ``trait:`` namespace: one property per trait, value ``required``.

    Nova turns image properties ``trait:<NAME>=required`` into
    ``traits_required`` (ImageMetaProps._set_attr_from_trait_names) and the
    scheduler then only picks hosts whose resource provider has the trait.
    Images cannot forbid traits (flavors can: GlanceExt::Nova::FlavorTraits),
    hence the single value.  The same keys and value on a host aggregate
    isolate it (nova/scheduler/request_filter.py isolate_aggregates: an
    aggregate with ``trait:<NAME>=required`` is left out for requests that
    do not require the trait), so the namespace serves aggregates too.
    """
    props = {}
    for name in traits:
        props[name] = {
            "title": "Require %s" % name,
            "description": (
                "Image: boot its instances only on hosts whose resource "
                "provider reports the trait %s (placement trait from "
                "os-traits). Aggregate: with [scheduler] "
                "enable_isolated_aggregate_filtering, only instances whose "
                "image or flavor requires %s land on its hosts. Nova reads "
                "only the value 'required'." % (name, name)),
            "type": "string",
            "enum": ["required"],
        }
    return {
        "namespace": TRAITS_NAMESPACE,
        "display_name": "Required traits (nova scheduling)",
        "description": (
            "One property per trait of the os-traits package. Setting "
            "trait:<TRAIT>=required on an image makes nova schedule its "
            "instances only on hosts that report the trait; on a host "
            "aggregate it keeps instances that do not require the trait "
            "away from the aggregate's hosts (isolated aggregate "
            "filtering). Generated by tools/generate_traits_namespace.py "
            "from os-traits; CUSTOM_* traits are allowed by nova but not "
            "listed. Flavors, which may also forbid traits, use "
            "GlanceExt::Nova::FlavorTraits."),
        "visibility": "public",
        "protected": True,
        "resource_type_associations": [
            {"name": catalog_mod.IMAGE, "prefix": "trait:"},
            {"name": catalog_mod.VOLUME, "prefix": "trait:",
             "properties_target": "image"},
            {"name": extra_specs.AGGREGATE, "prefix": "trait:"},
        ],
        "properties": props,
    }


def dump_document(doc: Dict[str, Any], path: str) -> None:
    """Write a namespace file the way every catalog file is formatted."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=4, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def render_document(doc: Dict[str, Any]) -> str:
    return json.dumps(doc, indent=4, ensure_ascii=False) + "\n"


def guest_os_with_distros(doc: Dict[str, Any], values: List[str],
                          version: str) -> Dict[str, Any]:
    props = doc.get("properties") or {}
    if "os_distro" not in props:
        raise GeneratorError("%s has no os_distro property to fill"
                             % doc.get("namespace"))
    new = json.loads(json.dumps(doc))
    new["properties"]["os_distro"]["description"] = (
        OS_DISTRO_DESCRIPTION % version)
    new["properties"]["os_distro"]["enum"] = list(values)
    return new


def write_os_distro(catalog_dir: str, osinfo_dir: str = OSINFO_DIR,
                    check_only: bool = False) -> Optional[str]:
    """Fill os_distro's enum; with ``check_only`` return a drift message."""
    path = os.path.join(catalog_dir, GUEST_OS_FILE)
    doc = catalog_mod.load_document(path)
    new = guest_os_with_distros(doc, os_distro_values(
        osinfo_short_ids(osinfo_dir)), osinfo_version(osinfo_dir))
    if check_only:
        if render_document(new) != render_document(doc):
            return ("%s: os_distro differs from osinfo-db in %s; run "
                    "tools/generate_os_distro_ids.py" % (path, osinfo_dir))
        return None
    dump_document(new, path)
    return None


def write_traits(catalog_dir: str, check_only: bool = False) -> Optional[str]:
    path = os.path.join(catalog_dir, TRAITS_FILE)
    new = trait_namespace(trait_names())
    if check_only:
        try:
            current = catalog_mod.load_document(path)
        except catalog_mod.CatalogError as e:
            return str(e)
        if render_document(new) != render_document(current):
            return ("%s differs from the installed os-traits; run "
                    "tools/generate_traits_namespace.py" % path)
        return None
    dump_document(new, path)
    return None
