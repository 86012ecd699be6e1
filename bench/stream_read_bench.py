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

"""Benchmark: what the store upload's thread pays to read a stream.

Glance's store upload (glance_store's file driver) reads ``file_path`` in
64 KiB chunks, hashes each (md5 and sha512) and, with thin provisioning,
tests it for zeros (``not any(buf)``, under the GIL) before writing it or
skipping it. That thread is an import's critical path, so a streamed
conversion is hidden under the upload only if reading the stream costs
that thread no more than reading the ready raw file.

Side by side in this process, rounds alternating the order, the same loop
(glance_store's steps, written out in ``upload``) reads the same raw data
from:

* ``file``: the ready raw output (the peer: Glance's upload-only import);
* ``stream``: glance_ext's stream (nbdcopy from qemu-nbd, spliced into a
  FIFO), as the plugin runs it (``ConversionEngine.start_stream``).

Reported per source (medians): wall time, the reading thread's CPU
(``RUSAGE_THREAD``), the CPU of its ``read()`` calls alone, and the ratio
of each to ``file``, plus each round's stream / file ratios (the rounds
alternate which goes first; neighbours share the machine's state). Every
round's sha512 must match, or the run fails. No
Glance runs here (``convert_bench.py --cpu`` measures the same thread
inside glance-api).

    python bench/stream_read_bench.py [--size-gib 4] [--rounds 3]
        [--thin true|false] [--work-dir DIR]
"""

import argparse
import hashlib
import json
import os
import resource
import sys
import time

import convert_bench

from glance_ext.conversion import engine as engine_mod
from glance_ext.conversion import settings as settings_mod

MiB = 1024 * 1024


def thread_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_THREAD)
    return use.ru_utime + use.ru_stime


def upload(path: str, out: str, thin: bool) -> dict:
    """glance_store ``_drivers/filesystem.py`` ``add()``: read 64 KiB,
    md5 + sha512, then skip a zero chunk (truncate) or write it."""
    sha512, md5 = hashlib.sha512(), hashlib.md5()
    read_cpu = 0.0
    size = 0
    start, cpu0 = time.monotonic(), thread_cpu()
    with open(path, "rb") as src, open(out, "wb") as dst:
        while True:
            before = thread_cpu()
            buf = src.read(65536)
            read_cpu += thread_cpu() - before
            if not buf:
                break
            size += len(buf)
            sha512.update(buf)
            md5.update(buf)
            if thin and not any(buf):
                dst.truncate(size)
                dst.seek(0, os.SEEK_END)
            else:
                dst.write(buf)
    return {"seconds": time.monotonic() - start,
            "thread_cpu": thread_cpu() - cpu0, "read_cpu": read_cpu,
            "bytes": size, "sha512": sha512.hexdigest()}


def one(name: str, args, src: str, raw: str) -> dict:
    out = os.path.join(args.work_dir, "stream-read.out")
    convert_bench.drop_file(out)
    os.sync()
    system = convert_bench.SystemWatch()
    if name == "file":
        result = upload(raw, out, args.thin == "true")
    else:
        engine = engine_mod.ConversionEngine(settings_mod.Settings(
            lock_dir=os.path.join(args.work_dir, "locks")))
        fifo = os.path.join(args.work_dir, "stream-read.fifo")
        convert_bench.drop_file(fifo)
        streaming = engine.start_stream(src, "qcow2", fifo)
        result = upload(fifo, out, args.thin == "true")
        outcome = streaming.result(timeout=120)
        if outcome is None or outcome.error is not None:
            raise SystemExit("the stream failed: %s" % (
                outcome.error if outcome else "it did not end"))
    result.update(system.stop())
    convert_bench.drop_file(out)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--thin", default="true", choices=["true", "false"])
    parser.add_argument("--work-dir", default="/var/tmp/glance-ext-bench")
    args = parser.parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    src = convert_bench.build_source(args.work_dir, args.size_gib)
    raw = convert_bench.ready_raw(src, "qcow2", args.work_dir)
    names = ["file", "stream"]
    runs = {name: [] for name in names}
    for round_no in range(args.rounds):
        order = names if round_no % 2 == 0 else names[::-1]
        for name in order:
            result = one(name, args, src, raw)
            runs[name].append(result)
            print("round %d %-6s %.2f s, thread CPU %.2f s, read() CPU "
                  "%.2f s, reclaim scanned %.1f GiB, kswapd CPU %.1f s, "
                  "direct reclaim stalls %d" % (
                      round_no, name, result["seconds"],
                      result["thread_cpu"], result["read_cpu"],
                      result["reclaim_scanned_gib"], result["kswapd_cpu"],
                      result["direct_reclaim_stalls"]),
                  file=sys.stderr, flush=True)
    digests = {r["sha512"] for name in names for r in runs[name]}
    if len(digests) != 1:
        raise SystemExit("the sources did not give the same bytes")
    median = convert_bench.median
    keys = ("seconds", "thread_cpu", "read_cpu") + convert_bench.SYSTEM_KEYS
    rows = {name: {key: median(r[key] for r in runs[name]) for key in keys}
            for name in names}
    print("Reading %d GiB (%s) in glance_store's upload loop, thin "
          "provisioning %s, median of %d:\n" % (
              args.size_gib, os.path.basename(src), args.thin, args.rounds))
    print("| source | wall | / file | upload thread CPU | / file | its "
          "read() calls | page reclaim scanned | kswapd CPU | all CPUs "
          "system / softirq / iowait | steal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    base = rows["file"]
    for name in names:
        r = rows[name]
        print("| %s | %.2f s | %.3f | %.2f s | %.3f | %.2f s | %s |" % (
            name, r["seconds"], r["seconds"] / base["seconds"],
            r["thread_cpu"], r["thread_cpu"] / base["thread_cpu"],
            r["read_cpu"], convert_bench.system_columns(r)))
    walls = sorted(s["seconds"] / f["seconds"]
                   for s, f in zip(runs["stream"], runs["file"]))
    cpus = sorted(s["thread_cpu"] / f["thread_cpu"]
                  for s, f in zip(runs["stream"], runs["file"]))
    print("\nPer round, stream / file: wall %.3f (%.3f-%.3f), upload thread "
          "CPU %.3f (%.3f-%.3f)" % (median(walls), walls[0], walls[-1],
                                    median(cpus), cpus[0], cpus[-1]))
    out_dir = os.path.join(convert_bench.ROOT, "bench", "out")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "stream_read_bench.json"), "w") as fh:
        json.dump({"thin": args.thin, "rows": rows, "runs": runs}, fh,
                  indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
