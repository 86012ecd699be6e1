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

"""The inventory and SBOM of whole guest images, as inspect_guest makes them.

On the generated images of every family: the package database of the
release (dpkg; rpm SQLite, BerkeleyDB, ndb; the Windows Uninstall keys),
its kernels, a CycloneDX SBOM that the CycloneDX validator accepts, with a
package URL per Linux package that ``packageurl`` parses back, and
``glance-ext inspect --sbom``.
"""

import json
import os
import subprocess
import sys

import pytest
from packageurl import PackageURL

from glance_ext import testing
from glance_ext.guest import inspect_guest
from glance_ext.guest import options
from glance_ext.guest import sbom
from glance_ext.testing.guest import pkgdb
from glance_ext.testing.guest import trees

GLANCE_EXT = os.path.join(os.path.dirname(sys.executable), "glance-ext")

RPM_IMAGES = [("rhel-lvm", "rpm-sqlite", "/var/lib/rpm/rpmdb.sqlite",
               pkgdb.EL9_RPMS, ("rhel", "9.1")),
              ("fedora-not-last", "rpm-sqlite",
               "/usr/lib/sysimage/rpm/rpmdb.sqlite", pkgdb.EL9_RPMS,
               ("fedora", "37")),
              ("centos7-bdb", "rpm-bdb", "/var/lib/rpm/Packages",
               pkgdb.EL7_RPMS, ("centos", "7")),
              ("sles-dirty-gpt", "rpm-ndb",
               "/usr/lib/sysimage/rpm/Packages.db", pkgdb.SUSE_RPMS,
               ("sles", "15.4"))]


@pytest.fixture(autouse=True)
def need_rpm():
    why = pkgdb.rpm_missing()
    testing.needs(why)


def _evr(spec):
    text = "%s-%s" % (spec.version, spec.release)
    return "%d:%s" % (spec.epoch, text) if spec.epoch else text


@pytest.mark.parametrize("name,fmt,database,specs,key", RPM_IMAGES)
def test_rpm_images(inspected, name, fmt, database, specs, key):
    report = inspected(name)
    inv = report.inventory
    assert report.ok, report["error"]
    assert (inv["format"], inv["database"], inv["error"]) == \
        (fmt, database, None)
    assert sorted((p.name, p.evr, p.arch) for p in report.packages) == \
        sorted((s.name, _evr(s), s.arch) for s in specs)
    kernel = trees.KERNELS[key]
    assert [k.version for k in report.kernels] == [kernel]
    assert report.kernels[0].image == "/boot/vmlinuz-" + kernel
    assert report.kernels[0].modules == "/lib/modules/" + kernel


def test_debian_image_lists_the_real_status(inspected):
    report = inspected("debian-mbr", "qcow2")
    host = pkgdb.host_dpkg_status()
    if host is None:
        testing.needs("not a Debian build machine: the tree has a small "
                      "status file")
    inv = report.inventory
    assert (inv["format"], inv["error"]) == ("dpkg", None)
    assert inv["bytes_read"] == os.path.getsize(host)
    admin = os.path.dirname(host)
    assert sorted((p.name, p.evr, p.arch) for p in report.packages) == \
        pkgdb.dpkg_query(admin)
    assert [k.version for k in report.kernels] == ["6.1.0-18-amd64"]


def test_small_status_skips_removed_package(inspected):
    report = inspected("ubuntu-gpt")
    names = sorted(p.name for p in report.packages)
    assert names == ["cloud-init", "dash", "openssh-server", "systemd"]


@pytest.mark.parametrize("name,dirty", [("win2k22-gpt", False),
                                        ("win11-dirty-gpt", True)])
def test_windows_programs(inspected, name, dirty):
    report = inspected(name)
    inv = report.inventory
    assert (inv["format"], inv["error"]) == ("windows-registry", None)
    assert sorted((p.name, p.version, p.vendor)
                  for p in report.packages) == trees.windows_apps(dirty)
    edge = next(p for p in report.packages if p.name == "Microsoft Edge")
    assert edge.arch == "x86"                    # WOW6432Node
    assert report.kernels == []


def test_inventory_off(guest_image):
    path, fmt = guest_image("rhel-lvm")
    report = inspect_guest(path, fmt, options.standalone_conf(
        inventory=False))
    assert report.inventory is None
    assert "inventory off" in report.format_text()
    with pytest.raises(sbom.SbomError, match="did not list packages"):
        sbom.build(report)


def test_inventory_budget_refuses_large_database(guest_image):
    path, fmt = guest_image("rhel-lvm")
    report = inspect_guest(path, fmt, options.standalone_conf(
        inventory_budget_mb=1))
    assert report.ok and report.inventory["error"] is None
    host = pkgdb.host_dpkg_status()
    if host is None or os.path.getsize(host) < 1024 * 1024:
        return
    # The real dpkg status (over 1 MiB) does not fit in 1 MiB: refused, and
    # the OS report stands.
    path, fmt = guest_image("debian-mbr")
    report = inspect_guest(path, fmt, options.standalone_conf(
        inventory_budget_mb=1))
    assert report.ok and report.os["distro"] == "debian"
    assert "more than the 1.0 MiB left of the inventory budget" in \
        report.inventory["error"]
    assert report.packages == []


@pytest.mark.parametrize("name,container", [
    ("debian-mbr", "raw"), ("rhel-lvm", "qcow2"), ("centos7-bdb", "raw"),
    ("sles-dirty-gpt", "raw"), ("win2k22-gpt", "raw")])
def test_sbom_valid_with_purls(inspected, name, container):
    report = inspected(name, container)
    text = sbom.to_json(sbom.build(report, image_id="1234"))
    assert sbom.validate(text) is None
    doc = json.loads(text)
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    subject = doc["metadata"]["component"]
    assert subject["type"] == "operating-system"
    assert subject["name"] == report.os["distro"]
    props = {p["name"]: p["value"] for p in subject["properties"]}
    assert props["glance_ext:image_id"] == "1234"
    comps = doc["components"]
    assert len(comps) == len(report.packages) > 0
    [dep] = [d for d in doc["dependencies"] if d["ref"] == "os"]
    assert len(dep["dependsOn"]) == len(comps)
    if report.os["os_type"] == "windows":
        assert all("purl" not in c for c in comps)
        return
    kind = {"dpkg": "deb", "rpm-sqlite": "rpm", "rpm-bdb": "rpm",
            "rpm-ndb": "rpm"}[report.inventory["format"]]
    distro = "%s-%s" % (report.os["distro"], report.os["version"])
    for comp in comps:
        url = PackageURL.from_string(comp["purl"])
        assert url.type == kind and url.name == comp["name"]
        assert url.qualifiers["distro"] == distro
    if kind == "rpm":
        ssl = next(c for c in comps if c["name"].startswith(
            ("openssl", "libopenssl")))
        url = PackageURL.from_string(ssl["purl"])
        spec = next(s for s in pkgdb.EL9_RPMS + pkgdb.EL7_RPMS +
                    pkgdb.SUSE_RPMS if s.name == ssl["name"] and
                    "%s-%s" % (s.version, s.release) == url.version)
        assert url.qualifiers.get("epoch") == (
            str(spec.epoch) if spec.epoch else None)


def test_deb_purl_form():
    from glance_ext.guest.packages import Package, PackageFormat
    url = sbom.purl(Package("libssl3", "3.0.11", "1~deb12u2", None,
                            "amd64", "openssl", "3.0.11-1~deb12u2"),
                    PackageFormat.DPKG, "debian", "12")
    assert url.to_string() == ("pkg:deb/debian/libssl3@3.0.11-1~deb12u2?"
                               "arch=amd64&distro=debian-12&upstream=openssl")
    url = sbom.purl(Package("bash", "5.1.8", "6.el9", 2, "x86_64", "bash",
                            "5.1.8-6.el9"),
                    PackageFormat.RPM_SQLITE, "rhel", "9.1")
    assert url.to_string() == (
        "pkg:rpm/rhel/bash@5.1.8-6.el9?arch=x86_64&distro=rhel-9.1&epoch=2"
        "&upstream=bash-5.1.8-6.el9.src.rpm")
    url = sbom.purl(Package("musl", "1.2.4", "r2", None, "x86_64", "musl",
                            "1.2.4-r2"), PackageFormat.APK, "alpine",
                    "3.18.4")
    assert url.to_string() == ("pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&"
                               "distro=alpine-3.18.4")


def _inspect(*args):
    return subprocess.run([GLANCE_EXT, "inspect"] + list(args),
                          capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def test_cli_writes_the_sbom(guest_image, tmp_path):
    path, _fmt = guest_image("centos7-bdb", "qcow2")
    out = tmp_path / "sbom.json"
    proc = _inspect(path, "--sbom", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "packages:          4 (rpm-bdb, /var/lib/rpm/Packages)" in \
        proc.stdout
    assert "kernels:           3.10.0-1160.el7.x86_64" in proc.stdout
    text = out.read_text()
    assert sbom.validate(text) is None
    assert "sbom:              %s (CycloneDX 1.6, 4 packages, sha256 %s)" \
        % (out, sbom.sha256(text)) in proc.stdout
    assert len(json.loads(text)["components"]) == 4
    if os.path.isdir("/usr/share/osinfo/os"):
        assert "end of life:       centos7 reached its end of life on " \
            "2024-06-30" in proc.stdout


def test_cli_sbom_usage_errors(guest_image, tmp_path):
    path, _fmt = guest_image("centos7-bdb")
    proc = _inspect(path, "--no-guest", "--sbom", str(tmp_path / "x.json"))
    assert proc.returncode == 2
    assert "--sbom needs the look inside the guest" in proc.stderr
    proc = _inspect(path, "--sbom", str(tmp_path / "no" / "x.json"))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


def test_cli_no_sbom_for_unknown_guest(tmp_path):
    junk = tmp_path / "junk.raw"
    junk.write_bytes(b"\0" * 1024 * 1024)
    proc = _inspect(str(junk), "--sbom", str(tmp_path / "x.json"))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no SBOM written: " in proc.stderr
    assert not (tmp_path / "x.json").exists()
