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

"""Benchmark of guest inspection: time and bytes read vs image size, and
against libguestfs ``virt-inspector`` on the same images.

Part 1 (always): the same Ubuntu guest (GPT, ESP, ext4 root) with root
filesystems of growing size (sparse), as raw and qcow2; ours
(``glance_ext.guest.inspect_guest``: worker process, qemu-nbd for qcow2)
reports wall time (median of --repeat runs), the guest bytes the engine
read, and the bytes read from the image file (for qcow2: what qemu-nbd
read, container metadata included, from /proc/PID/io).

Part 2 (when ``virt-inspector`` is installed): ours and virt-inspector
side by side on the same images, in this process, one after the other,
with the OS identity each reports (distro, version, osinfo short-id,
architecture, root device) and, unless ``--no-applications``, the
installed packages (virt-inspector's applications against our inventory,
compared as sets of (name, version)). libguestfs boots an appliance: here
only with ``LIBGUESTFS_BACKEND=direct`` and TCG (no KVM), see the notes on
libguestfs in shared/notes/glance-33.md.

Part 3: the cost of the package inventory: time and bytes read with
``[glance_ext_guest] inventory`` on and off, and the time to build and
serialise the CycloneDX SBOM ("inv read": what the inventory itself read
from the guest disk, database and filesystem metadata), on the Part 2 images and on a
diskimage-builder image, raw and qcow2 (``--dib``: built once by
glance_ext/testing/guest/dib.py, about five minutes here; or
``--dib-image RAW,QCOW2`` for images built before). The diskimage-builder
image is also one of the Part 2 images.

    python bench/guest_bench.py [--sizes 64,1024,20480] [--repeat 3]
                                [--peer-images ubuntu-gpt,debian-mbr]
                                [--no-applications]
                                [--dib | --dib-image RAW,QCOW2]
"""

import argparse
import json
import os
import statistics
import sys
import time

from glance_ext.guest import inspect_guest
from glance_ext.guest import options as guest_options
from glance_ext.guest import sbom
from glance_ext.testing.guest import disks
from glance_ext.testing.guest import virt_inspector as peer_mod


def ours(path: str, fmt: str, repeat: int, inventory: bool = True):
    times, report = [], None
    conf = guest_options.standalone_conf(inventory=inventory)
    for _ in range(repeat):
        start = time.monotonic()
        report = inspect_guest(path, fmt, conf)
        times.append(time.monotonic() - start)
    if not report.ok:
        raise SystemExit("inspection of %s failed: %s"
                         % (path, report["error"]))
    return statistics.median(times), report


def _norm_version(version):
    """"22.04" and libguestfs' major 22 / minor 4 are the same version."""
    major, _dot, minor = (version or "").partition(".")
    return "%s.%d" % (major, int(minor or 0))


def ours_identity(report):
    o = report.os
    return {"distro": o.get("distro"),
            "version": _norm_version(o.get("version")),
            "osinfo": o.get("osinfo_id"), "arch": report["architecture"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="64,1024,20480",
                        help="root filesystem sizes in MiB (sparse)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer-images", default="ubuntu-gpt,rhel-lvm,"
                        "win2k22-gpt",
                        help="images (glance_ext/testing/guest/disks.py SPECS) for the "
                             "virt-inspector comparison; empty to skip")
    parser.add_argument("--no-applications", action="store_false",
                        dest="applications",
                        help="run virt-inspector without its application "
                             "list (identity only, as before)")
    parser.add_argument("--dib", action="store_true",
                        help="also measure a diskimage-builder Debian 12 "
                             "image (built once by glance_ext/testing/guest/dib.py)")
    parser.add_argument("--dib-image", help="diskimage-builder images "
                        "built before (raw or qcow2, comma-separated)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = {"sizes": [], "peer": [], "inventory": []}

    print("Part 1: time and guest bytes read vs image size (median of %d)"
          % args.repeat)
    print("%-10s %-6s %12s %12s %10s %12s %12s" % (
        "root MiB", "format", "virtual", "file bytes", "time s",
        "guest read", "image read"))
    for size in [int(s) for s in args.sizes.split(",") if s]:
        spec = disks.DiskSpec("bench-ubuntu-%d" % size, "ubuntu", "22.04",
                              "gpt-esp", root_mb=size)
        for container in ("raw", "qcow2"):
            path = disks.image(spec, container)
            fmt = disks.disk_format_of(container)
            elapsed, report = ours(path, fmt, args.repeat)
            row = {"root_mib": size, "format": fmt,
                   "virtual_size": report["virtual_size"],
                   "file_bytes": os.stat(path).st_blocks * 512,
                   "seconds": round(elapsed, 3),
                   "bytes_read": report["bytes_read"],
                   "image_bytes_read": report["image_bytes_read"]}
            results["sizes"].append(row)
            print("%-10d %-6s %12d %12d %10.3f %12d %12s" % (
                size, fmt, row["virtual_size"], row["file_bytes"],
                elapsed, row["bytes_read"], row["image_bytes_read"]))

    peers = [(n, disks.SPECS[n], None) for n in
             args.peer_images.split(",") if n]
    dib_paths = [p for p in (args.dib_image or "").split(",") if p]
    if args.dib and not dib_paths:
        from glance_ext.testing.guest import dib
        dib_paths = [dib.image("raw"), dib.image("qcow2")]
    if dib_paths:
        peers.append(("dib-debian12", None, dib_paths))
    if peers and peer_mod.missing():
        print("\nPart 2 skipped: %s" % peer_mod.missing())
    elif peers:
        print("\nPart 2: ours vs virt-inspector%s, same images, same "
              "process" % (" with applications" if args.applications
                           else " --no-applications"))
        print("%-16s %-6s %9s %9s %8s  %-40s %-24s %s" % (
            "image", "format", "ours s", "peer s", "ratio", "ours",
            "virt-inspector", "packages ours/peer"))
        for name, spec, given in peers:
            _peer_rows(args, results, name, spec, given)
    print("\nPart 3: the package inventory's cost (median of %d)"
          % args.repeat)
    print("%-16s %-6s %9s %9s %11s %11s %9s %7s %9s" % (
        "image", "format", "off s", "on s", "read off", "read on",
        "inv read", "pkgs", "sbom s"))
    # The Part 2 images, the Debian image with the build machine's real
    # dpkg status (hundreds of packages) and the largest Part 1 image.
    inv_images = list(peers)
    if "debian-mbr" not in [n for n, _s, _g in inv_images]:
        inv_images.append(("debian-mbr", disks.SPECS["debian-mbr"], None))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if sizes:
        inv_images.append(("bench-ubuntu-%d" % max(sizes), disks.DiskSpec(
            "bench-ubuntu-%d" % max(sizes), "ubuntu", "22.04", "gpt-esp",
            root_mb=max(sizes)), None))
    for name, spec, given in inv_images:
        for path, fmt in _paths(spec, given):
            t_off, r_off = ours(path, fmt, args.repeat, inventory=False)
            t_on, r_on = ours(path, fmt, args.repeat, inventory=True)
            start = time.monotonic()
            text = sbom.to_json(sbom.build(r_on))
            t_sbom = time.monotonic() - start
            inv = r_on.inventory
            row = {"image": name, "format": fmt, "off_s": round(t_off, 3),
                   "on_s": round(t_on, 3), "read_off": r_off["bytes_read"],
                   "read_on": r_on["bytes_read"],
                   "db_bytes": inv["disk_bytes_read"],
                   "packages": inv["count"],
                   "sbom_s": round(t_sbom, 3), "sbom_bytes": len(text)}
            results["inventory"].append(row)
            print("%-16s %-6s %9.3f %9.3f %11d %11d %9d %7d %9.3f" % (
                name, fmt, t_off, t_on, row["read_off"], row["read_on"],
                row["db_bytes"], row["packages"], t_sbom))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


def _paths(spec, given):
    if given:
        return [(p, "qcow2" if p.endswith(".qcow2") else "raw")
                for p in given]
    if spec.root_fs == "ntfs" and disks.ntfs_missing():
        return []
    return [(disks.image(spec, c), disks.disk_format_of(c))
            for c in ("raw", "qcow2")]


def _peer_rows(args, results, name, spec, given) -> None:
    for path, fmt in _paths(spec, given):
        t_ours, report = ours(path, fmt, args.repeat)
        peer = peer_mod.run(path, fmt, applications=args.applications)
        mine = ours_identity(report)
        differ = [k for k in ("distro", "version", "osinfo", "arch")
                  if mine.get(k) != peer.identity.get(k)]
        same = not differ
        ours_apps = sorted({(p.name, p.evr if report.os.get("os_type") !=
                             "windows" else p.version)
                            for p in report.packages})
        peer_apps = sorted(set(peer.applications))
        apps_same = ours_apps == peer_apps if args.applications else None
        row = {"image": name, "format": fmt, "ours_s": round(t_ours, 3),
               "peer_s": round(peer.elapsed, 3),
               "ratio": round(peer.elapsed / t_ours, 1), "ours": mine,
               "peer": peer.identity, "peer_error": peer.error,
               "identical_identity": same, "identity_differs": differ,
               "ours_packages": len(ours_apps),
               "peer_packages": len(peer_apps),
               "identical_packages": apps_same,
               "only_ours": [list(a) for a in ours_apps
                             if a not in peer_apps][:20],
               "only_peer": [list(a) for a in peer_apps
                             if a not in ours_apps][:20]}
        results["peer"].append(row)
        print("%-16s %-6s %9.3f %9.3f %7.0fx  %-40s %-24s %s%s" % (
            name, fmt, t_ours, peer.elapsed, peer.elapsed / t_ours,
            "%(distro)s %(version)s %(osinfo)s %(arch)s" % mine,
            peer.error[:60] if peer.error else
            "%(distro)s %(version)s %(osinfo)s %(arch)s" % peer.identity,
            "%d/%d%s" % (len(ours_apps), len(peer_apps),
                         "" if apps_same in (True, None) else " DIFFER"),
            "" if same else "  <-- %s differs" % ", ".join(differ)))


if __name__ == "__main__":
    sys.exit(main())
