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

"""Benchmark of the validate step: bytes read and wall time vs image size.

Part 1 runs, side by side in one process, on the same sparse files:
  * ours: ``glance_ext.inspection.engine.Engine.inspect`` (the whole
    validate step: bounded read, header checks, qemu-img info, nested-image
    look, policy);
  * Glance's image_conversion checks: its real ``_ConvertImage._inspect_path``
    (oslo detect_file_format + safety_check) plus the same
    ``qemu-img info`` call under Glance's QEMU_IMG_PROC_LIMITS that the
    plugin makes before converting.
Bytes read are the bytes read *from the image file* by the process and its
children (qemu-img), counted with strace in a separate run; times are the
median of --repeat runs without strace.

Part 2 (--glance) imports a 1 GiB image through the local Glance
(``glance-ext local-glance``) with and without the plugin and compares the
validate step (as logged by the plugin) with the whole import.

    python bench/validate_bench.py [--sizes 1M,64M,1G,20G] [--glance]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from glance_ext.common import sizes

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV_BIN = os.path.dirname(sys.executable)
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text):
    return int(text[:-1]) * UNITS[text[-1]] if text[-1] in UNITS else \
        int(text)


# bench format -> (Glance disk_format, qemu-img convert options)
FORMATS = {"raw": ("raw", []), "qcow2": ("qcow2", []),
           "vmdk-stream": ("vmdk", ["-o", "subformat=streamOptimized"]),
           # As VMware writes it: grain directory offset in a footer at the
           # end of the file (oslo's sequential reader must read it all).
           "vmdk-stream-footer": ("vmdk",
                                  ["-o", "subformat=streamOptimized"]),
           # Validated when luks is allowed; qemu-img info opens it keyless.
           "luks": ("luks", ["--object", "secret,id=s0,data=bench", "-o",
                             "key-secret=s0,iter-time=10"])}


def add_stream_footer(path):
    import struct
    with open(path, "r+b") as f:
        header = f.read(512)
        f.seek(0, os.SEEK_END)
        f.write(struct.pack("<QII", 1, 0, 3) + bytes(496) + header +
                bytes(512))
        f.seek(56)
        f.write(b"\xff" * 8)


def make_images(out, sizes, formats, random_mib=1):
    """Sparse images: ``random_mib`` MiB of random data, holes after."""
    os.makedirs(out, exist_ok=True)
    images = []
    for size in sizes:
        raw = os.path.join(out, "bench-%s-%dM.raw" % (size, random_mib))
        if not os.path.exists(raw):
            with open(raw, "wb") as f:
                left = min(random_mib << 20, parse_size(size))
                while left > 0:
                    f.write(os.urandom(min(left, 1 << 24)))
                    left -= 1 << 24
                f.truncate(parse_size(size))
        for fmt in formats:
            disk_format, opts = FORMATS[fmt]
            path = raw if fmt == "raw" else "%s.%s" % (raw[:-4], fmt)
            if not os.path.exists(path):
                subprocess.run(["qemu-img", "convert", "-f", "raw", "-O",
                                disk_format] + opts + [raw, path], check=True)
                if fmt == "vmdk-stream-footer":
                    add_stream_footer(path)
            images.append((size, fmt, disk_format, path))
    return images


# ------------------------------------------------------ the two checkers --
def ours(path, fmt):
    from glance_ext.inspection.engine import Engine
    from glance_ext.inspection.policy import Policy
    policy = Policy()
    if fmt == "luks":
        policy = Policy(allowed_formats=policy.allowed_formats | {"luks"})
    report = Engine(policy).inspect(path, fmt)
    assert report.accepted, report.to_dict()
    return report


def glance_checks(path, fmt):
    from glance.async_.flows.plugins import image_conversion
    from glance.async_ import utils as glance_utils
    from glance.common import config  # noqa: F401 (registers image_format)
    from oslo_concurrency import processutils as putils
    task = object.__new__(image_conversion._ConvertImage)
    inspector = task._inspect_path(path)
    out, err = putils.trycmd("qemu-img", "info", "-f", fmt, "--output=json",
                             path, prlimit=glance_utils.QEMU_IMG_PROC_LIMITS,
                             python_exec=sys.executable)
    assert not err, err
    return str(inspector), json.loads(out)["virtual-size"]


CHECKERS = {"ours": ours, "glance": glance_checks}


def timed(checker, path, fmt, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        CHECKERS[checker](path, fmt)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


_OPEN = re.compile(r'^(\d+)\s+openat\([^"]*"([^"]+)".*\)\s+=\s+(\d+)')
_READ = re.compile(r'^(\d+)\s+(read|pread64|preadv|preadv2)\((\d+),.*\)\s+='
                   r'\s+(\d+)')
_CLOSE = re.compile(r'^(\d+)\s+close\((\d+)\)')


def bytes_read(checker, path, fmt):
    """Bytes read from ``path`` by one check and its children, via strace.

    Threads of one process share fds, so fds are tracked per thread group
    (strace -f prints thread ids; qemu reads in worker threads), keyed by
    the thread that opened them and inherited by threads created after.
    """
    with tempfile.NamedTemporaryFile(suffix=".strace") as log:
        subprocess.run(
            ["strace", "-f", "-qq", "-e", "signal=none", "-e",
             "trace=openat,read,pread64,preadv,preadv2,close", "-o",
             log.name, sys.executable, os.path.abspath(__file__),
             "--one", checker, path, fmt], check=True,
            stdout=subprocess.DEVNULL)
        real = os.path.realpath(path)
        open_fds = set()
        total = 0
        with open(log.name, errors="replace") as fh:
            for line in fh:
                m = _OPEN.match(line)
                if m and os.path.realpath(m.group(2)) == real:
                    open_fds.add(int(m.group(3)))
                    continue
                m = _READ.match(line)
                if m and int(m.group(3)) in open_fds:
                    total += int(m.group(4))
                    continue
                m = _CLOSE.match(line)
                if m:
                    open_fds.discard(int(m.group(2)))
        return total


def part1(args):
    out = args.out
    images = make_images(out, args.sizes.split(","), args.formats.split(","),
                         args.random_mib)
    rows = []
    for size, label, fmt, path in images:
        row = {"size": size, "format": label,
               "file_bytes": os.stat(path).st_blocks * 512}
        for checker in CHECKERS:
            CHECKERS[checker](path, fmt)   # warm the page cache
            row[checker + "_s"] = timed(checker, path, fmt, args.repeat)
            row[checker + "_read"] = bytes_read(checker, path, fmt)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    print("| image (virtual, sparse) | allocated | ours: bytes read | ours: "
          "time | Glance image_conversion checks: bytes read | Glance: time "
          "|")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| %s %s | %s | %s | %.3f s | %s | %.3f s |" % (
            r["size"], r["format"], sizes.human(r["file_bytes"]),
            sizes.human(r["ours_read"]), r["ours_s"], sizes.human(r["glance_read"]),
            r["glance_s"]))


# -------------------------------------------------------- part 2: Glance --
def local_glance(state_dir, plugins):
    cmd = [os.path.join(VENV_BIN, "glance-ext"), "local-glance", "up",
           "--state-dir", state_dir, "--format", "json"]
    if plugins:
        cmd += ["--plugins", ",".join(plugins)]
    out = subprocess.run(cmd, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out[out.index("\n{") + 1:] if not out.startswith("{")
                      else out)


def import_once(info, path):
    env = dict(os.environ, OS_IMAGE_URL=info["url"],
               OS_AUTH_TOKEN=info["member_token"])
    start = time.perf_counter()
    with open(path, "rb") as data:
        out = subprocess.run(
            [os.path.join(VENV_BIN, "glance"), "image-create-via-import",
             "--disk-format", "raw", "--container-format", "bare", "--name",
             "bench", "--import-method", "glance-direct"], stdin=data,
            env=env, check=True, capture_output=True, text=True).stdout
    image_id = re.search(r"\|\s+id\s+\|\s+(\S+)", out).group(1)
    import urllib.request
    while True:
        req = urllib.request.Request(info["url"] + "/v2/images/" + image_id)
        req.add_header("X-Auth-Token", info["member_token"])
        with urllib.request.urlopen(req) as resp:
            image = json.loads(resp.read())
        if image["status"] == "active":
            return image_id, time.perf_counter() - start
        if image["status"] == "queued" and image.get(
                "os_glance_failed_import"):
            raise RuntimeError("import failed: %s" % image)
        time.sleep(0.05)


def part2(args):
    images = make_images(args.out, ["1G"], ["raw"])
    path = images[0][3]
    results = {}
    for label, plugins in (("without", []), ("with", ["glance_ext_validate"])):
        state = tempfile.mkdtemp(prefix="bench-glance-")
        info = local_glance(state, plugins)
        try:
            totals, steps = [], []
            for _ in range(args.repeat):
                image_id, total = import_once(info, path)
                totals.append(total)
                if plugins:
                    with open(info["log_file"], errors="replace") as log:
                        m = re.findall(r"Image %s: accepted .* in ([0-9.]+)s"
                                       % image_id, log.read())
                    steps.append(float(m[-1]))
            results[label] = (statistics.median(totals),
                              statistics.median(steps) if steps else None)
        finally:
            subprocess.run([os.path.join(VENV_BIN, "glance-ext"),
                            "local-glance", "down", "--state-dir", state],
                           capture_output=True)
    total_with, step = results["with"]
    total_without, _ = results["without"]
    print("\n| 1 GiB raw import (glance-direct, stage+import, median of %d) "
          "| seconds |" % args.repeat)
    print("|---|---|")
    print("| without glance_ext_validate | %.3f |" % total_without)
    print("| with glance_ext_validate | %.3f |" % total_with)
    print("| validate step (logged by the plugin) | %.3f |" % step)
    print("| validate step / import with plugin | %.2f %% |"
          % (100 * step / total_with))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,64M,1G,20G")
    parser.add_argument("--formats", default="raw,qcow2")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--random-mib", type=int, default=1,
                        help="MiB of random (incompressible) data at the "
                             "start of each image; the rest is a hole")
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    parser.add_argument("--glance", action="store_true",
                        help="also import 1 GiB through the local Glance")
    parser.add_argument("--one", nargs=3, metavar=("CHECKER", "PATH", "FMT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        CHECKERS[args.one[0]](args.one[1], args.one[2])
        return 0
    part1(args)
    if args.glance:
        part2(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
