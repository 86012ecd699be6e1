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
architecture, root device). libguestfs boots an appliance: here only
with ``LIBGUESTFS_BACKEND=direct`` and TCG (no KVM), see the notes on
libguestfs in shared/notes/glance-33.md.

    python bench/guest_bench.py [--sizes 64,1024,20480] [--repeat 3]
                                [--peer-images ubuntu-gpt,debian-mbr]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

from glance_ext.guest import inspect_guest
from glance_ext.testing.guest import disks

HERE = os.path.dirname(os.path.abspath(__file__))


def ours(path: str, fmt: str, repeat: int):
    times, report = [], None
    for _ in range(repeat):
        start = time.monotonic()
        report = inspect_guest(path, fmt)
        times.append(time.monotonic() - start)
    if not report.ok:
        raise SystemExit("inspection of %s failed: %s"
                         % (path, report["error"]))
    return statistics.median(times), report


def virt_inspector(path: str, fmt: str):
    env = dict(os.environ, LIBGUESTFS_BACKEND="direct",
               LIBGUESTFS_BACKEND_SETTINGS="force_tcg")
    qfmt = {"vhd": "vpc"}.get(fmt, fmt)
    start = time.monotonic()
    # --no-applications: ours does not list packages; this also makes the
    # peer faster, so the ratio is conservative.
    out = subprocess.run(["virt-inspector", "--no-applications",
                          "--format=%s" % qfmt, "-a", path],
                         capture_output=True, text=True, env=env,
                         timeout=900)
    elapsed = time.monotonic() - start
    if out.returncode != 0 or not out.stdout.strip():
        return elapsed, {"error": out.stderr.strip()[-300:]}
    osel = ET.fromstring(out.stdout).find("operatingsystem")
    if osel is None:
        return elapsed, {"error": "no operating system found"}

    def text(tag):
        el = osel.find(tag)
        return el.text if el is not None else None
    version = "%s.%s" % (text("major_version"), text("minor_version"))
    return elapsed, {"distro": text("distro"), "version": version,
                     "osinfo": text("osinfo"), "arch": text("arch"),
                     "root": text("root")}


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
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = {"sizes": [], "peer": []}

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

    peers = [n for n in args.peer_images.split(",") if n]
    if peers and shutil.which("virt-inspector") is None:
        print("\nPart 2 skipped: virt-inspector (libguestfs-tools) is not "
              "installed")
        peers = []
    if peers:
        print("\nPart 2: ours vs virt-inspector, same images, same process")
        print("%-16s %-6s %9s %9s %8s  %-44s %s" % (
            "image", "format", "ours s", "peer s", "ratio", "ours",
            "virt-inspector"))
    for name in peers:
        spec = disks.SPECS[name]
        for container in ("raw", "qcow2"):
            if spec.root_fs == "ntfs" and disks.ntfs_missing():
                print("%-16s skipped: %s" % (name, disks.ntfs_missing()))
                break
            path = disks.image(spec, container)
            fmt = disks.disk_format_of(container)
            t_ours, report = ours(path, fmt, args.repeat)
            t_peer, peer = virt_inspector(path, fmt)
            mine = ours_identity(report)
            same = all(mine.get(k) == peer.get(k)
                       for k in ("distro", "version", "osinfo", "arch"))
            row = {"image": name, "format": fmt, "ours_s": round(t_ours, 3),
                   "peer_s": round(t_peer, 3),
                   "ratio": round(t_peer / t_ours, 1), "ours": mine,
                   "peer": peer, "identical_identity": same}
            results["peer"].append(row)
            print("%-16s %-6s %9.3f %9.3f %7.0fx  %-44s %s%s" % (
                name, fmt, t_ours, t_peer, t_peer / t_ours,
                "%(distro)s %(version)s %(osinfo)s %(arch)s" % mine,
                peer.get("error") or "%(distro)s %(version)s %(osinfo)s "
                "%(arch)s" % peer, "" if same else "  <-- DIFFERENT"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
