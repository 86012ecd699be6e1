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

"""Debian 12 images made by diskimage-builder, the TripleO image tool.

``disk-image-create vm block-device-mbr debian cloud-init-datasources
growroot`` builds a real cloud image from Debian's package mirror
(debootstrap, then apt inside a chroot, grub, an initramfs): a guest the
engine has never been shaped for. The slow tests and the benchmark inspect
it; ``python -m glance_ext.testing.guest.dib --out DIR`` builds one by hand.

Needs: root (loop devices and mounts), ``disk-image-create`` (``pip
install diskimage-builder``, in the same environment as Python here),
``debootstrap`` and ``qemu-img``, and the Debian mirror this machine's apt
uses (from /etc/apt/sources.list*). diskimage-builder maps partitions with
``kpartx`` (device-mapper) and runs everything through ``sudo``; machines
without device-mapper (this kernel has none) or without sudo get the
stand-ins written by ``_stand_ins``: kpartx and dmsetup on top of the
kernel's own loop partition scanning (``partx -a``: /dev/loopNpM, linked
as /dev/mapper/loopNpM where diskimage-builder looks), and a sudo that
runs the command as the root it already is.

Everything is written under the output directory (work tree, apt cache,
images): never in the checkout.
"""

import argparse
import dataclasses
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

ELEMENTS = ("vm", "block-device-mbr", "debian", "cloud-init-datasources",
            "growroot")
RELEASE = "bookworm"
FORMATS = ("qcow2", "raw")
IMAGE_NAME = "debian12-dib"
TIMEOUT = 30 * 60

KPARTX = r"""#!/bin/sh
# kpartx stand-in (glance_ext glance_ext/testing/guest/dib.py): no device-mapper here,
# so the kernel's loop partition scanning makes /dev/loopNpM and
# /dev/mapper/loopNpM links to them, where diskimage-builder looks.
set -e
mode=""; dev=""
for arg in "$@"; do
    case "$arg" in -*) mode="$mode$arg" ;; *) dev="$arg" ;; esac
done
[ -b "$dev" ] || { echo "kpartx stand-in: $dev is not a block device" >&2; exit 1; }
name=$(basename "$dev")
case "$mode" in
*d*)
    rm -f /dev/mapper/"$name"p*
    partx -d "$dev" 2>/dev/null || true
    exit 0 ;;
esac
partx -a "$dev" 2>/dev/null || partx -u "$dev"
mkdir -p /dev/mapper
for part in /sys/block/"$name"/"$name"p*; do
    [ -e "$part" ] || continue
    p=$(basename "$part")
    i=0
    while [ ! -b /dev/"$p" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -b /dev/"$p" ] || { echo "kpartx stand-in: no /dev/$p" >&2; exit 1; }
    ln -sf /dev/"$p" /dev/mapper/"$p"
    echo "add map $p"
done
"""

DMSETUP = r"""#!/bin/sh
# dmsetup stand-in (glance_ext glance_ext/testing/guest/dib.py): the "mappings" are the
# links the kpartx stand-in made; nothing else is supported.
case "$1" in
--noudevsync) shift ;;
esac
case "$1" in
mknodes) exit 0 ;;
remove)
    name=$2
    rm -f /dev/mapper/"$name"
    exit 0 ;;
esac
echo "dmsetup stand-in: unsupported: $*" >&2
exit 1
"""

SUDO = r"""#!/bin/sh
# sudo stand-in (glance_ext glance_ext/testing/guest/dib.py) for a build that already
# runs as root: options dropped, VAR=value arguments kept (through env).
while [ $# -gt 0 ]; do
    case "$1" in
    -u|-g|-C|-D|-h|-p|-r|-t|-U) shift 2 ;;
    --) shift; break ;;
    -*) shift ;;
    *) break ;;
    esac
done
exec env "$@"
"""


class DibUnavailable(Exception):
    """diskimage-builder cannot build here (says what is missing)."""


@dataclasses.dataclass
class Build:
    seconds: float
    images: Dict[str, str]                 # format -> path
    log: str
    mirror: str
    security_mirror: str


def disk_image_create() -> Optional[str]:
    here = os.path.join(os.path.dirname(sys.executable),
                        "disk-image-create")
    return here if os.path.exists(here) else shutil.which(
        "disk-image-create")


def missing() -> Optional[str]:
    """What is missing for a build, or None."""
    if os.geteuid() != 0:
        return "diskimage-builder needs root (loop devices, mounts)"
    if disk_image_create() is None:
        return ("disk-image-create is not installed (pip install "
                "diskimage-builder)")
    for tool, pkg in (("debootstrap", "debootstrap"),
                      ("qemu-img", "qemu-utils"), ("partx", "util-linux"),
                      ("losetup", "mount")):
        if shutil.which(tool) is None and not os.path.exists(
                "/usr/sbin/" + tool):
            return "%s is not installed (Debian package %s)" % (tool, pkg)
    if not os.path.exists("/dev/loop-control"):
        return "no loop devices (/dev/loop-control)"
    return None


def _sources() -> List[Dict[str, List[str]]]:
    """apt's sources as {"uris", "suites"} records (both file styles)."""
    out = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as fh:
            for para in fh.read().split("\n\n"):
                fields = {}
                for line in para.splitlines():
                    key, sep, value = line.partition(":")
                    if sep and not line.startswith((" ", "#")):
                        fields[key.strip().lower()] = value.split()
                if fields.get("uris"):
                    out.append({"uris": fields["uris"],
                                "suites": fields.get("suites", [])})
    lists = ["/etc/apt/sources.list"] + sorted(
        glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in lists:
        if not os.path.exists(path):
            continue
        with open(path) as fh:
            for line in fh:
                line = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
                if len(line) >= 3 and line[0] == "deb":
                    out.append({"uris": [line[1]], "suites": [line[2]]})
    return out


def mirrors():
    """(mirror, security mirror) of the Debian archive apt uses here."""
    main = security = None
    for src in _sources():
        for uri in src["uris"]:
            if any(s.endswith("-security") for s in src["suites"]):
                security = security or uri
            elif main is None:
                main = uri
    if main is None:
        raise DibUnavailable("no Debian mirror in /etc/apt/sources.list*")
    if security is None:
        security = main.rstrip("/").rsplit("/", 1)[0] + "/debian-security"
    return main, security


def _stand_ins(bindir: str) -> None:
    os.makedirs(bindir, exist_ok=True)
    wanted = {"kpartx": KPARTX, "dmsetup": DMSETUP}
    if shutil.which("sudo") is None:
        wanted["sudo"] = SUDO
    for name, text in wanted.items():
        path = os.path.join(bindir, name)
        with open(path, "w") as fh:
            fh.write(text)
        os.chmod(path, 0o755)


def build(out_dir: str, formats=FORMATS) -> Build:
    """Build the image into ``out_dir`` (created); DibUnavailable if not."""
    why = missing()
    if why:
        raise DibUnavailable(why)
    mirror, security = mirrors()
    os.makedirs(out_dir, exist_ok=True)
    work = os.path.join(out_dir, "work")
    bindir = os.path.join(work, "bin")
    _stand_ins(bindir)
    env = dict(os.environ)
    env.update({
        "PATH": os.pathsep.join([bindir, os.path.dirname(sys.executable),
                                 env.get("PATH", ""), "/usr/sbin",
                                 "/sbin"]),
        "DIB_RELEASE": RELEASE,
        "DIB_DISTRIBUTION_MIRROR": mirror,
        "DIB_DEBIAN_SECURITY_MIRROR": security,
        "DIB_CLOUD_INIT_DATASOURCES": "ConfigDrive, OpenStack",
        "DIB_IMAGE_CACHE": os.path.join(work, "cache"),
        "TMP_DIR": os.path.join(work, "tmp"),
        "DIB_NO_TMPFS": "1",
        "DIB_SHOW_IMAGE_USAGE": "0",
        "LC_ALL": "C.UTF-8",
    })
    os.makedirs(env["TMP_DIR"], exist_ok=True)
    base = os.path.join(out_dir, IMAGE_NAME)
    log = os.path.join(out_dir, "build.log")
    cmd = [disk_image_create(), "-a", "amd64", "-t",
           ",".join(formats), "-o", base, "--no-tmpfs"] + list(ELEMENTS)
    start = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh,
                              stderr=subprocess.STDOUT, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - start
    images = {f: "%s.%s" % (base, f) for f in formats}
    if proc.returncode != 0 or not all(os.path.exists(p)
                                       for p in images.values()):
        with open(log) as fh:
            tail = fh.read()[-3000:]
        raise RuntimeError("disk-image-create failed (status %d) after "
                           "%.0f s; the end of %s:\n%s"
                           % (proc.returncode, seconds, log, tail))
    shutil.rmtree(work, ignore_errors=True)
    result = Build(round(seconds, 1), images, log, mirror, security)
    with open(os.path.join(out_dir, "build.json"), "w") as fh:
        json.dump(dataclasses.asdict(result), fh, indent=2)
    return result


def cached(out_dir: str) -> Optional[Build]:
    """The build already in ``out_dir``, if complete."""
    path = os.path.join(out_dir, "build.json")
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        result = Build(**json.load(fh))
    if all(os.path.exists(p) for p in result.images.values()):
        return result
    return None


def default_dir() -> str:
    import tempfile
    return os.environ.get("GLANCE_EXT_DIB_IMAGES") or os.path.join(
        tempfile.gettempdir(), "glance-ext-dib-images")


def image(fmt: str = "qcow2", out_dir: Optional[str] = None) -> str:
    """Path of the built image in ``fmt``, building it once into
    ``out_dir`` (default: $GLANCE_EXT_DIB_IMAGES or $TMPDIR)."""
    out_dir = out_dir or default_dir()
    result = cached(out_dir) or build(out_dir)
    return result.images[fmt]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=default_dir())
    parser.add_argument("--force", action="store_true",
                        help="build again even if an image is there")
    args = parser.parse_args()
    if args.force and os.path.exists(os.path.join(args.out, "build.json")):
        os.unlink(os.path.join(args.out, "build.json"))
    try:
        result = cached(args.out) or build(args.out)
    except DibUnavailable as exc:
        print("cannot build: %s" % exc, file=sys.stderr)
        return 2
    print(json.dumps(dataclasses.asdict(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
