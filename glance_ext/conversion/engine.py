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

"""The conversion engine: inspect, plan, wait for a slot, convert, verify.

One code path for the import plugin and ``glance-ext convert``. Order is
the argument:
1. the source has been inspected (the validate report, or inspected here):
   qemu-img never opens an image nobody checked;
2. ``qemu-img measure`` + free space: refuse before writing a byte;
3. a host-wide slot: at most ``max_concurrent`` conversions per host,
   then, with ``coordination_url``, a cluster-wide one (``cluster``);
4. the tuned, bounded ``qemu-img convert`` with progress, by several
   processes at once when much of the source's data is stored
   compressed and the output is raw or qcow2 (``split``);
5. verification of the output (format, safety, virtual size, compare).
On any failure the partial output is deleted here, so callers only ever
see a complete, verified file or an exception.
"""

import dataclasses
import hashlib
import os
import shutil
import time
from typing import Callable, List, Optional

from oslo_log import log as logging
from oslo_utils import units

from glance_ext.common import files
from glance_ext.conversion import cluster as cluster_mod
from glance_ext.conversion import preflight
from glance_ext.conversion import process
from glance_ext.conversion import progress as progress_mod
from glance_ext.conversion.settings import Settings
from glance_ext.conversion import slots as slots_mod
from glance_ext.conversion import split
from glance_ext.conversion import stream as stream_mod
from glance_ext.conversion import target as target_mod
from glance_ext.conversion import verify as verify_mod
from glance_ext.inspection import engine as inspection_engine
from glance_ext.inspection import policy as policy_mod
from glance_ext.inspection.report import Report
from glance_ext.qemu import runner
from glance_ext.exceptions import SourceRejected

LOG = logging.getLogger(__name__)
# What a caller is told while a conversion waits for its slots.
_OnWait = Callable[[slots_mod.Wait], None]


@dataclasses.dataclass
class Outcome:
    source_format: str
    target_format: str
    source_virtual_size: int
    virtual_size: int
    size: int
    required_bytes: int
    free_bytes_before: int
    cache_mode: str
    convert_seconds: float
    total_seconds: float
    waited_seconds: float
    compared: bool
    output_path: str
    processes: int = 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def sha512_of(path: str, chunk: int = 4 * units.Mi) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as fh:
        while True:
            data = fh.read(chunk)
            if not data:
                break
            digest.update(data)
    return digest.hexdigest()


class ConversionEngine:
    def __init__(self, settings: Settings,
                 policy: Optional[policy_mod.Policy] = None) -> None:
        self.settings = settings
        base = policy or policy_mod.Policy()
        self.policy = dataclasses.replace(base, qemu_img=settings.qemu_img)
        self.qemu = runner.QemuImg(
            settings.qemu_img,
            limits=runner.Limits(
                cpu_seconds=self.policy.qemu_cpu_seconds,
                address_space_bytes=self.policy.qemu_address_space,
                timeout_seconds=self.policy.qemu_timeout))

    # -- 1. the source --------------------------------------------------
    def inspect_source(self, path: str, claimed: Optional[str] = None,
                       container: Optional[str] = None) -> Report:
        """Inspect with the validate engine; raise SourceRejected."""
        report = inspection_engine.Engine(self.policy).inspect(
            path, claimed, container)
        if not report.accepted:
            raise SourceRejected(report.reason())
        return report

    # -- 2..5 -------------------------------------------------------------
    def convert(self, src: str, source_format: str, dst: str,
                target_format: str, *,
                on_progress: Optional[progress_mod.Callback] = None,
                on_wait: Optional[Callable[[slots_mod.Wait], None]] = None,
                should_stop: Optional[Callable[[], bool]] = None,
                slot_dir: Optional[str] = None,
                node: Optional[str] = None) -> Outcome:
        """``node`` names this node in the slot files and on the cluster
        backend (default: the host name)."""
        start = time.monotonic()
        try:
            return self._convert(src, source_format, dst, target_format,
                                 on_progress, on_wait, should_stop, slot_dir,
                                 start, node)
        except BaseException:
            _unlink(dst)
            raise

    def _limits(self, work_dir: str, slot_dir: Optional[str],
                node: Optional[str], on_wait) -> slots_mod.Held:
        s = self.settings
        host = slots_mod.HostSlots(slot_dir or s.slot_dir(work_dir),
                                   s.max_concurrent, node=node)
        cluster = None
        if s.coordination_url:
            cluster = cluster_mod.ClusterSlots(
                s.coordination_url, s.cluster_max_concurrent,
                member="glance-ext-convert-%s-%d" % (host.node,
                                                     os.getpid()))
        return slots_mod.acquire_all(host, cluster, s.slot_wait_seconds,
                                     on_wait=on_wait,
                                     unreachable=s.coordination_unreachable)

    def _convert(self, src, source_format, dst, target_format, on_progress,
                 on_wait, should_stop, slot_dir, start, node) -> Outcome:
        s = self.settings
        work_dir = os.path.dirname(os.path.abspath(dst))
        info = self.qemu.info(src, source_format)
        vsize = int(info.get("virtual-size", 0))
        fixed = target_format == "vhd" and s.vhd_subformat == "fixed"
        plan = preflight.plan(self.qemu, src, source_format, target_format,
                              work_dir, s.free_space_margin_percent,
                              s.free_space_reserve, fixed_size=fixed)
        LOG.info("Converting %s -> %s: virtual %d bytes, output needs %d "
                 "bytes, %d free in staging", source_format, target_format,
                 vsize, plan.required_bytes, plan.free_bytes)
        wait_start = time.monotonic()
        with self._limits(work_dir, slot_dir, node, on_wait):
            waited = time.monotonic() - wait_start
            if waited > 1:
                # Others converted while we waited: check the space again.
                plan = preflight.plan(
                    self.qemu, src, source_format, target_format, work_dir,
                    s.free_space_margin_percent, s.free_space_reserve,
                    fixed_size=fixed)
            out_bytes = max(plan.fully_allocated_bytes, vsize)
            cache_mode = process.choose_cache_mode(
                s.cache_mode, work_dir, plan.required_bytes,
                s.direct_io_threshold)
            timeout = s.timeout_for(vsize)
            bounds = runner.Limits(
                timeout_seconds=timeout,
                cpu_seconds=max(60, int(timeout * 2)),
                address_space_bytes=s.address_space,
                file_size_bytes=out_bytes + out_bytes // 10 + 64 * units.Mi)
            tuning = s.tuning(cache_mode)
            ranges = self._ranges(src, source_format, target_format, vsize,
                                  tuning)
            if len(ranges) > 1:
                LOG.info("Converting %s -> %s with %d processes: %s",
                         source_format, target_format, len(ranges),
                         ", ".join("%d MiB of data at %d MiB" % (
                             r.data_bytes // units.Mi, r.offset // units.Mi)
                             for r in ranges))
                convert_seconds = split.convert(
                    self.qemu, s.qemu_nbd, src, source_format, dst,
                    target_format, creation_options(s, target_format),
                    tuning, bounds, vsize, ranges, on_progress=on_progress,
                    interval=s.progress_interval_seconds,
                    should_stop=should_stop)
            else:
                command = process.build_command(
                    s.qemu_img, src, source_format, dst, target_format,
                    creation_options(s, target_format), tuning)
                convert_seconds = process.run(
                    command, bounds, vsize, on_progress=on_progress,
                    interval=s.progress_interval_seconds,
                    should_stop=should_stop, cpu=tuning.cpu)
            if on_progress is not None:
                on_progress(progress_mod.Progress(
                    100.0, vsize, vsize, time.monotonic() - start,
                    phase="verifying"))
            compare_limits = runner.Limits(
                cpu_seconds=max(60, int(timeout * 2)),
                address_space_bytes=s.address_space,
                timeout_seconds=timeout)
            check = verify_mod.verify(
                self.qemu, self.policy, src, source_format, dst,
                target_format, vsize, s.compare, compare_limits)
        size = os.stat(dst).st_size
        total = time.monotonic() - start
        LOG.info("Converted %s -> %s in %.1fs (%d bytes)", source_format,
                 target_format, convert_seconds, size)
        return Outcome(source_format, target_format, vsize,
                       check.virtual_size, size, plan.required_bytes,
                       plan.free_bytes, cache_mode, convert_seconds, total,
                       waited, check.compared, dst, len(ranges))

    # -- streaming (raw outputs into the store upload) --------------------
    def missing_stream_tools(self) -> List[str]:
        """The streaming producer's tools this host lacks."""
        return [tool for tool in (self.settings.nbdcopy,
                                  self.settings.qemu_nbd)
                if not shutil.which(tool)]

    def start_stream(self, src: str, source_format: str, fifo: str, *,
                     on_progress: Optional[progress_mod.Callback] = None,
                     on_wait: Optional[_OnWait] = None,
                     should_stop: Optional[Callable[[], bool]] = None,
                     on_reader: Optional[Callable[[], None]] = None,
                     slot_dir: Optional[str] = None,
                     node: Optional[str] = None
                     ) -> stream_mod.Streaming:
        """Start converting ``src`` to raw into the FIFO ``fifo`` (created
        here). Waits for a conversion slot first, host-wide and, with
        ``coordination_url``, cluster-wide, as a file conversion does (a
        slot timeout fails the caller, nothing started); the slots are
        held until the stream ends.
        No free-space check: nothing is written to staging. Same limits
        as a file conversion: timeout by size, CPU, address space, nice,
        CPU policy, ionice, rate limit; the file-size limit is 1 MiB, as
        the producer writes no file at all."""
        s = self.settings
        info = self.qemu.info(src, source_format)
        vsize = int(info.get("virtual-size", 0))
        work_dir = os.path.dirname(os.path.abspath(fifo))
        slot = self._limits(work_dir, slot_dir, node, on_wait)
        try:
            timeout = s.timeout_for(vsize)
            bounds = runner.Limits(
                timeout_seconds=timeout,
                cpu_seconds=max(60, int(timeout * 2)),
                address_space_bytes=s.address_space,
                file_size_bytes=units.Mi)
            tuning = s.tuning()
            command = stream_mod.producer_command(
                s.nbdcopy, s.qemu_nbd, src, source_format, tuning)
            streaming = stream_mod.Streaming(
                command, bounds, fifo, vsize, cpu=tuning.cpu,
                open_timeout=s.stream_open_timeout_seconds,
                rate_limit_mb=s.rate_limit_mb, on_progress=on_progress,
                interval=s.progress_interval_seconds,
                should_stop=should_stop, on_reader=on_reader,
                release=slot.release)
            LOG.info("Streaming %s -> raw into %s: virtual %d bytes",
                     source_format, fifo, vsize)
            streaming.start()
        except BaseException:
            slot.release()
            _unlink(fifo)
            raise
        return streaming

    def _ranges(self, src: str, source_format: str, target_format: str,
                vsize: int, tuning: process.Tuning) -> list:
        """The ranges to convert at once; one range means one process."""
        s = self.settings
        workers = s.split_workers or split.auto_workers()
        whole = [split.Range(0, vsize, vsize)]
        if workers <= 1 or vsize < s.split_min_data or \
                not split.usable(target_format, tuning, s.qemu_nbd):
            return whole
        found = split.map_data(
            s.qemu_img, src, source_format, vsize,
            dataclasses.replace(self.qemu.limits, timeout_seconds=60))
        # Only inflating compressed data is CPU work that more processes
        # speed up; copying plain data is bound by the page cache or the
        # disk, where parallel writers into one file only contend
        # (bench/convert_bench.py, docs/convert.md).
        if found is None or found.compressed_bytes < s.split_min_data:
            return whole
        return split.plan(vsize, workers, found.counts)


def creation_options(settings: Settings, target: str):
    opts = list(target_mod.output_options(settings, target))
    if target == "vhd":
        # Keep the exact virtual size instead of rounding it to a CHS
        # geometry, so the output's virtual size equals the source's.
        opts.append("force_size=on")
    return opts


def _unlink(path: str) -> None:
    files.unlink_quietly(path, "partial conversion output ")
