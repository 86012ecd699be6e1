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

"""A CycloneDX SBOM of one guest, from its inventory.

Built with ``cyclonedx-python-lib`` (the CycloneDX project's own library:
its model, its serializer, its schema validator) rather than hand-written
JSON, so that the output follows the schema version it claims. Every
Linux package carries a package URL in the form scanners (Trivy, Grype,
OSV) match against their advisories: ``pkg:deb/debian/openssl@3.0.11-1~deb12u2
?arch=amd64&distro=debian-12``, ``pkg:rpm/rhel/bash@5.1.8-6.el9
?arch=x86_64&epoch=1&distro=rhel-9.1``, ``pkg:apk/alpine/musl@1.2.4-r2
?arch=x86_64&distro=alpine-3.18``. Windows programs get none: purl has no
type for Windows installers, and an invented one would match nothing.

The OS itself is the BOM's subject (``metadata.component``, type
``operating-system``), with its kernels, libosinfo short-id and
end-of-life date as properties; it depends on every package.
"""

import datetime
import hashlib
import uuid
from typing import Iterable, List, Optional

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.bom import BomMetaData
from cyclonedx.model.component import Component
from cyclonedx.model.component import ComponentType
from cyclonedx.model.contact import OrganizationalEntity
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from glance_ext.guest.packages import Package
from glance_ext.guest.packages import PackageFormat
from glance_ext.guest.report import GuestReport
from glance_ext.exceptions import SbomError

SCHEMA = SchemaVersion.V1_6
PROP = "glance_ext:"
# os-release ID -> the purl namespace scanners use for that distribution.
NAMESPACES = {"opensuse-leap": "opensuse", "opensuse-tumbleweed":
              "opensuse", "sles": "suse", "sled": "suse", "ol": "oracle"}
PURL_TYPES = {PackageFormat.DPKG: "deb", PackageFormat.RPM_SQLITE: "rpm",
              PackageFormat.RPM_BDB: "rpm", PackageFormat.RPM_NDB: "rpm",
              PackageFormat.APK: "apk"}


def purl(pkg: Package, fmt: PackageFormat, distro: Optional[str],
         version: Optional[str]) -> Optional[PackageURL]:
    """The package URL of one package (None for Windows programs)."""
    kind = PURL_TYPES.get(fmt)
    if kind is None:
        return None
    namespace = NAMESPACES.get(distro or "", distro or None)
    if kind == "apk":
        namespace = "alpine"
    qualifiers = {}
    if pkg.arch:
        qualifiers["arch"] = pkg.arch
    if distro and version:
        qualifiers["distro"] = "%s-%s" % (distro, version)
    if kind == "rpm":
        # rpm's purl carries the epoch as a qualifier, not in the version.
        full = pkg.version + ("-" + pkg.release if pkg.release else "")
        if pkg.epoch:
            qualifiers["epoch"] = str(pkg.epoch)
        if pkg.source and pkg.source_version:
            qualifiers["upstream"] = "%s-%s.src.rpm" % (pkg.source,
                                                        pkg.source_version)
    else:
        full = pkg.evr
        if pkg.source and pkg.source != pkg.name:
            qualifiers["upstream"] = pkg.source
    return PackageURL(type=kind, namespace=namespace, name=pkg.name,
                      version=full or None, qualifiers=qualifiers or None)


def _props(pairs: Iterable) -> List[Property]:
    return [Property(name=PROP + k, value=str(v)) for k, v in pairs
            if v not in (None, "")]


def build(report: GuestReport, image_id: Optional[str] = None,
          now: Optional[datetime.datetime] = None) -> Bom:
    """The BOM of an inspected guest; SbomError when it has no inventory."""
    inv = report.inventory
    if inv is None:
        raise SbomError("the inspection did not list packages (set "
                        "[glance_ext_guest] inventory = true)")
    if inv.get("error"):
        raise SbomError("the package inventory failed: %s" % inv["error"])
    if not report.ok:
        raise SbomError("the guest could not be inspected: %s"
                        % report.get("error"))
    osd = report.os
    fmt = PackageFormat(inv["format"]) if inv.get("format") else None
    eol = report.eol
    subject = Component(
        type=ComponentType.OPERATING_SYSTEM, bom_ref="os",
        name=osd.get("distro") or osd.get("os_type") or "unknown",
        version=osd.get("version") or None,
        description=osd.get("product_name") or None,
        properties=_props([
            ("osinfo_id", osd.get("osinfo_id")),
            ("architecture", report.get("architecture")),
            ("firmware", report.get("firmware")),
            ("disk_format", report.get("disk_format")),
            ("image_id", image_id),
            ("package_database", inv.get("database")),
            ("eol_date", eol.eol_date.isoformat()
             if eol is not None and eol.eol_date else None)] +
            [("kernel", k.version) for k in report.kernels]))
    components = []
    refs = set()
    for index, pkg in enumerate(report.packages):
        url = purl(pkg, fmt, osd.get("distro"), osd.get("version")) \
            if fmt else None
        ref = url.to_string() if url else "pkg-%d" % index
        if ref in refs:
            ref = "%s#%d" % (ref, index)
        refs.add(ref)
        components.append(Component(
            type=ComponentType.APPLICATION
            if fmt is PackageFormat.WINDOWS else ComponentType.LIBRARY,
            bom_ref=ref, name=pkg.name, version=pkg.evr or None, purl=url,
            supplier=OrganizationalEntity(name=pkg.vendor)
            if pkg.vendor else None,
            properties=_props([("arch", pkg.arch),
                               ("source", pkg.source),
                               ("source_version", pkg.source_version),
                               ("license", pkg.license)])))
    metadata = BomMetaData(component=subject,
                           timestamp=now or datetime.datetime.now(
                               datetime.timezone.utc))
    # A random serial, as CycloneDX asks: two SBOMs of one image are two
    # documents (each with its own timestamp).
    bom = Bom(components=components, metadata=metadata,
              serial_number=uuid.uuid4())
    bom.register_dependency(subject, components)
    return bom


def to_json(bom: Bom) -> str:
    return JsonV1Dot6(bom).output_as_string(indent=2)


def validate(text: str) -> Optional[str]:
    """None when ``text`` is valid CycloneDX 1.6 JSON, else the error."""
    from cyclonedx.validation.json import JsonStrictValidator
    error = JsonStrictValidator(SCHEMA).validate_str(text)
    return None if error is None else str(error)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
