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

"""Split conversion: several qemu-img processes convert one image, each a
disjoint range of it.

Why it exists: ``qemu-img convert`` runs all its coroutines in one thread,
so a conversion uses one core however many the host has. Inflating the
data of a streamOptimized VMDK or a compressed qcow2 (most distributions'
cloud images) is CPU work in that one thread, and qemu-img has no switch
for more threads. So such an image is cut here into contiguous ranges
holding equal amounts of data (counted with ``qemu-img map``, which also
tells compressed data apart: it has no host offset), and each range is
converted by its own ``qemu-img convert -n`` through qemu's ``raw``
driver with ``offset`` and ``size`` on both sides:

* raw output: every process opens the pre-sized output file at its range;
  the ranges do not overlap, so they need no coordination;
* qcow2 output: qcow2 metadata must have one writer, so one ``qemu-nbd``
  owns the output and the converters write into its export over a Unix
  socket in a private (0700) directory.

Plain (uncompressed) data is not split: copying it is bound by the page
cache or the disk, and parallel writers into one file only contend there
(measured in docs/convert.md). Other output formats are written by one
process: a streamOptimized VMDK must be written in order, and nothing was
measured for vhd, vhdx or vdi. Each process runs under the same prlimit
bounds as a single conversion, and ``process.run_group`` gives them one
progress, one timeout and one fate: the first failure stops them all.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import ContextManager, Iterator, List, Optional, Sequence

from oslo_log import log as logging
from oslo_utils import units

from glance_ext import exceptions
from glance_ext.conversion import process
from glance_ext.conversion import progress as progress_mod
from glance_ext.qemu import formats
from glance_ext.qemu import runner

LOG = logging.getLogger(__name__)

SPLIT_TARGETS = ("raw", "qcow2")
# Range boundaries fall on multiples of this: a whole number of clusters
# for every qcow2 cluster size up to 2 MiB and of every other format's
# grains and blocks, so no two processes write into one output cluster.
ALIGN = 2 * units.Mi
# qemu-img map's extents are counted into this many buckets of the
# virtual size; a boundary can be off by at most one bucket of data.
BUCKETS = 1024
# A source fragmented beyond this many map entries is not split.
MAP_ENTRY_LIMIT = 1000000
MAX_AUTO_WORKERS = 4


@dataclasses.dataclass(frozen=True)
class Range:
    offset: int
    length: int
    data_bytes: int


def auto_workers() -> int:
    """The CPUs this process may run on, at most MAX_AUTO_WORKERS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_AUTO_WORKERS, cpus))


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


@dataclasses.dataclass
class DataMap:
    """Where a source's data is: allocated bytes per bucket of
    ``bucket_size(virtual_size)``, and how much of it is stored
    compressed (map extents with data but no host offset)."""
    counts: List[int]
    compressed_bytes: int = 0


def map_data(qemu_img: str, src: str, source_format: str,
             virtual_size: int, limits: runner.Limits) -> Optional[DataMap]:
    """``qemu-img map`` read as it streams (its output grows with the
    source's fragmentation, so it is never held whole). None when map
    fails, runs out of time or the source has too many extents."""
    bucket = bucket_size(virtual_size)
    found = DataMap([0] * max(1, -(-virtual_size // bucket)))
    try:
        proc = process.spawn([qemu_img, "map", "--output=json", "-f",
                              formats.to_qemu(source_format), src], limits,
                             stderr=subprocess.DEVNULL)
    except process.ConvertError as exc:
        LOG.info("qemu-img map could not run (%s); not splitting", exc)
        return None
    watchdog = threading.Timer(limits.timeout_seconds, runner.kill_group,
                               (proc,))
    watchdog.start()
    entries = 0
    try:
        for line in proc.stdout:
            entries += 1
            if entries > MAP_ENTRY_LIMIT:
                LOG.info("%s has more than %d extents; not splitting",
                         src, MAP_ENTRY_LIMIT)
                runner.kill_group(proc)
                return None
            text = line.strip().lstrip(b"[").rstrip(b"],")
            if not text:
                continue
            entry = json.loads(text)
            if entry.get("data"):
                length = int(entry["length"])
                _count(found.counts, bucket, int(entry["start"]), length)
                if "offset" not in entry:
                    found.compressed_bytes += length
    except (ValueError, KeyError, TypeError) as exc:
        LOG.info("unexpected qemu-img map output (%s); not splitting", exc)
        runner.kill_group(proc)
        return None
    finally:
        watchdog.cancel()
        proc.wait()
        proc.stdout.close()
    if proc.returncode != 0:
        LOG.info("qemu-img map exited with %d; not splitting",
                 proc.returncode)
        return None
    return found


def bucket_size(virtual_size: int) -> int:
    return max(ALIGN, _round_up(-(-virtual_size // BUCKETS), ALIGN))


def _count(counts: List[int], bucket: int, start: int, length: int) -> None:
    end = start + length
    while start < end:
        index = start // bucket
        if index >= len(counts):
            break
        stop = min(end, (index + 1) * bucket)
        counts[index] += stop - start
        start = stop


def plan(virtual_size: int, workers: int,
         counts: Sequence[int]) -> List[Range]:
    """Cut ``[0, virtual_size)`` into at most ``workers`` contiguous,
    ALIGN-aligned ranges holding about equal data (``counts`` from
    ``map_data``)."""
    bucket = bucket_size(virtual_size)
    total = sum(counts)
    if workers <= 1 or total == 0:
        return [Range(0, virtual_size, total)]
    ranges: List[Range] = []
    start = acc = taken = 0
    for index, count in enumerate(counts):
        acc += count
        end = min(virtual_size, (index + 1) * bucket)
        if len(ranges) < workers - 1 and end < virtual_size and \
                acc - taken >= total / workers:
            ranges.append(Range(start, end - start, acc - taken))
            start, taken = end, acc
    ranges.append(Range(start, virtual_size - start, total - taken))
    return ranges


def _opt(value: str) -> str:
    # --image-opts separates options with commas; a literal one is doubled.
    return str(value).replace(",", ",,")


def source_spec(path: str, source_format: str, rng: Range) -> str:
    return ("driver=raw,offset=%d,size=%d,file.driver=%s,"
            "file.file.driver=file,file.file.filename=%s"
            % (rng.offset, rng.length, formats.to_qemu(source_format),
               _opt(path)))


def file_target_spec(path: str, rng: Range) -> str:
    return ("driver=raw,offset=%d,size=%d,file.driver=file,file.filename=%s"
            % (rng.offset, rng.length, _opt(path)))


def nbd_target_spec(socket_path: str, rng: Range) -> str:
    return ("driver=raw,offset=%d,size=%d,file.driver=nbd,"
            "file.server.type=unix,file.server.path=%s"
            % (rng.offset, rng.length, _opt(socket_path)))


def worker_command(qemu_img: str, source: str, target: str,
                   tuning: process.Tuning, cache_mode: Optional[str],
                   rate_limit_mb: int) -> List[str]:
    """One range's ``qemu-img convert``: into an existing, zeroed target
    (``-n --target-is-zero``: holes are skipped, never written)."""
    return (process.io_priority(tuning)
            + [qemu_img, "convert", "-p", "-n", "--target-is-zero"]
            + process.tuned_args(tuning, cache_mode, rate_limit_mb)
            + ["--image-opts", source, "--target-image-opts", target])


def usable(target_format: str, tuning: process.Tuning,
           qemu_nbd: str) -> bool:
    """Whether this target can be written by several processes here."""
    if target_format not in SPLIT_TARGETS or tuning.sparse_size_kb == 0:
        # -S 0 asks for a fully written output; the split skips holes.
        return False
    if target_format == "qcow2" and not shutil.which(qemu_nbd):
        LOG.info("%s not found; qcow2 outputs are converted by one "
                 "process (install qemu-nbd, in qemu-utils or qemu-img)",
                 qemu_nbd)
        return False
    return True


def convert(qemu: runner.QemuImg, qemu_nbd: str, src: str,
            source_format: str, dst: str, target_format: str,
            create_options: Sequence[str], tuning: process.Tuning,
            bounds: runner.Limits, virtual_size: int, ranges: Sequence[Range],
            *, on_progress: Optional[progress_mod.Callback] = None,
            interval: float = 5.0, should_stop=None) -> float:
    """Convert ``ranges`` at once into a new ``dst``; elapsed seconds, or
    ConvertError (the caller deletes the partial output)."""
    start = time.monotonic()
    rate = -(-tuning.rate_limit_mb // len(ranges)) \
        if tuning.rate_limit_mb else 0
    if target_format == "raw":
        # Each process writes its range of the file itself.
        with open(dst, "wb") as fh:
            fh.truncate(virtual_size)
        output: ContextManager[Optional[str]] = contextlib.nullcontext()
    else:
        options = ["-o", ",".join(create_options)] if create_options else []
        qemu.run(["create", "-q", "-f", formats.to_qemu(target_format)]
                 + options + [dst, str(virtual_size)],
                 limits=runner.Limits(timeout_seconds=60,
                                      file_size_bytes=bounds.file_size_bytes))
        output = nbd_export(qemu_nbd, dst, target_format, tuning.cache_mode,
                            len(ranges), bounds, tuning.cpu)
    with output as socket_path:
        commands = [
            worker_command(
                qemu.binary, source_spec(src, source_format, r),
                nbd_target_spec(socket_path, r) if socket_path
                else file_target_spec(dst, r),
                # qemu-nbd applies the cache mode to a served output
                tuning, None if socket_path else tuning.cache_mode, rate)
            for r in ranges]
        process.run_group(commands, bounds, virtual_size,
                          weights=[r.length for r in ranges],
                          on_progress=on_progress, interval=interval,
                          should_stop=should_stop, cpu=tuning.cpu)
    return time.monotonic() - start


@contextlib.contextmanager
def nbd_export(qemu_nbd: str, path: str, image_format: str, cache_mode: str,
               clients: int, bounds: runner.Limits,
               cpu: process.CpuPriority,
               ready_seconds: float = 30.0) -> Iterator[str]:
    """``qemu-nbd`` serving ``path`` on a private Unix socket; yields the
    socket's path. On a normal exit qemu-nbd is asked to stop (SIGTERM),
    which flushes the image's metadata; it must then exit 0."""
    private = tempfile.mkdtemp(prefix="glance-ext-nbd-")
    socket_path = os.path.join(private, "socket")
    log_path = os.path.join(private, "log")
    command = [qemu_nbd, "--format", formats.to_qemu(image_format),
               "--cache", cache_mode, "--shared", str(clients),
               "--persistent", "--socket", socket_path, path]
    with open(log_path, "wb") as log:
        proc = process.spawn(command, bounds, cpu, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + ready_seconds
        while not os.path.exists(socket_path):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise exceptions.qemu_error(
                    "failed", "qemu-nbd did not start serving the output "
                    "(status %s)" % proc.poll(), stderr=_read(log_path))
            time.sleep(0.01)
        yield socket_path
    except BaseException:
        runner.kill_group(proc)
        proc.wait(timeout=10)
        raise
    else:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=max(30.0, bounds.timeout_seconds / 10))
        except subprocess.TimeoutExpired:
            runner.kill_group(proc)
            proc.wait(timeout=10)
            rc = None
        if rc != 0:
            raise exceptions.qemu_error(
                "failed", "qemu-nbd, which wrote the qcow2 output, ended "
                "with status %s" % rc, returncode=rc, stderr=_read(log_path))
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(65536).decode("utf-8", "replace")
    except OSError:
        return ""
