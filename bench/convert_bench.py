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

"""Benchmark: glance_ext_convert vs Glance's image_conversion, one run.

Builds a 4 GiB qcow2 with half of it allocated (64 MiB data runs
alternating with 64 MiB holes, non-repeating bytes), then, side by side in
this process:

* floor: plain ``qemu-img convert -f qcow2 -O FMT`` (what either plugin
  must at least spend);
* two local Glances (``glance-ext local-glance``, file store, SQLite):
  ours with ``glance_ext_validate,glance_ext_convert`` and Glance's
  ``image_conversion`` with the same output format;
* for each target (raw, qcow2) and each plugin: the image is staged first
  (not timed), then ``glance image-import`` runs until ``active``; the
  import's time is the task's span in glance-api's log (plugin work +
  store upload, to the millisecond; the client's status polling every
  0.5 s is also recorded as ``seconds``), while the staging directory's allocated
  bytes are sampled every 0.1 s (peak staging bytes); the disk is synced
  before each timed import so no earlier writeback lands in it;
  ``--import-repeat`` rounds alternate which plugin goes first, and
  medians are reported.

The qcow2 target keeps a qcow2 source as it is in both plugins (no
conversion), so that row measures the cost of checking; ``--vmdk`` adds a
vmdk source with the same data converted to qcow2 (``--vmdk-target raw``:
to raw).

``--upload-only`` adds, for each raw row, Glance's upload of the same
output ready made: the raw file (``qemu-img convert`` beforehand, not
timed) imported as ``raw`` through our Glance (validate inspects it,
convert has nothing to do), alternated with the other imports. The ratio
of our import to it says how much of the conversion is still visible
(1.00: fully hidden under the upload). ``--thin false`` turns glance_store's
``filesystem_thin_provisioning`` off in every Glance (local-glance turns
it on). ``--chunk-kib N`` sets ``filesystem_store_chunk_size`` in every
Glance (local-glance's is 1024; glance_store's default, 64, is what an
operator who changed nothing has). ``--repeat 0`` skips the
conversion-only comparison.

``--cpu`` also records, per import, where the CPU went (Linux /proc,
sampled every 0.25 s from the import's start, so staging is left out):
the CPU time and run-queue wait of glance-api's busiest thread (the one
running the store upload: read, md5 + sha512, the thin-provisioning zero
test, write), the whole worker's CPU, and the CPU of the processes it ran
(qemu-img, or nbdcopy with qemu-nbd). That tells a slower import whose
upload thread did more work from one whose upload thread waited. It also
records the machine-wide side (``SystemWatch``): page reclaim, kswapd's
CPU, all CPUs' system, softirq, iowait and steal time.

``--profile DIR`` samples glance-api's workers with py-spy (20 Hz, native
frames) during each import, keeps the raw stacks in DIR, and reports
where the upload thread's samples went: the innermost function (a libc
call such as ``write`` or ``clock_nanosleep``, or the Python line) and
the innermost Python line (``filesystem.py:870`` is the zero test).
py-spy counts a thread blocked in a system call as well as one running,
so these are seconds of the thread's wall time, not of its CPU.

``--fill-page-cache`` starts every import from the same memory state: a
page cache full of clean pages. Before each import is staged it reads a
sparse file as large as the machine's memory (holes: no disk reads, only
zero-filled cache pages), so every page an import then writes (staging,
qemu-img's output, the store file) is taken from that cache. Without it
an import that leaves memory free, as ours does by staging only the
source, takes free pages instead, and on a VM whose balloon reports free
pages to the host (virtio-balloon free page reporting, e.g. Firecracker)
each of those costs a host page fault the guest sees as the writer's CPU
time: about 1.7 s per GiB here, measured by writing 8 GiB after a long
idle (16.7 s) against after filling the cache (2.3 s). ``--cpu`` reports
the memory free at each import's start and, where the kernel exposes it,
how much free memory was reported to the host during the import.

``--variant KEY=VALUE`` (repeatable) starts a third Glance, ours with
those ``[glance_ext_convert]`` options on top, and alternates it with the
others in the same rounds: a same-run A/B of one setting (``nice=0``,
``stream_raw=false``), where comparing two runs would drown a few per cent
in the spread between runs. With ``--upload-only`` each round's ratios to
the upload-only import of the same round are reported too (median of the
per-round ratios): neighbours in time share the machine's state, so the
paired ratio spreads less than the ratio of medians.

    python bench/convert_bench.py [--size-gib 4] [--work-dir DIR] [--vmdk]
        [--vmdk-target qcow2|raw] [--upload-only] [--thin true|false]
        [--chunk-kib 64|1024] [--variant KEY=VALUE ...] [--cpu]
        [--profile DIR] [--fill-page-cache] [--repeat 3]
        [--import-repeat 3]

Prints a table (markdown) and writes JSON to bench/out/convert_bench.json.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil

from glance_ext.local_glance import client
from glance_ext.local_glance import config_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MiB = 1024 * 1024
RUN = 64 * MiB


def build_source(work: str, size_gib: int) -> str:
    qcow2 = os.path.join(work, "source-%dg.qcow2" % size_gib)
    if os.path.exists(qcow2):
        return qcow2
    raw = qcow2 + ".raw"
    block = bytearray(MiB)
    with open(raw, "wb") as fh:
        fh.truncate(size_gib * 1024 * MiB)
        n = 0
        for start in range(0, size_gib * 1024 * MiB, 2 * RUN):
            fh.seek(start)
            for _ in range(RUN // MiB):
                # cheap non-repeating content: stamp a counter every 512 B
                n += 1
                stamp = n.to_bytes(8, "little")
                block[0::512] = stamp[:1] * (MiB // 512)
                block[1::512] = stamp[1:2] * (MiB // 512)
                block[2::512] = bytes([(n * 7) & 0xFF or 1]) * (MiB // 512)
                fh.write(block)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw,
                    qcow2], check=True)
    os.unlink(raw)
    return qcow2


def allocated(directory: str) -> int:
    total = 0
    for name in os.listdir(directory):
        try:
            total += os.stat(os.path.join(directory, name)).st_blocks * 512
        except FileNotFoundError:
            pass
    return total


def median(values) -> float:
    """The middle value (the upper of the two middle ones for an even
    count), as every table here reports it."""
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def drop_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def fill_page_cache(work: str) -> None:
    """Fill the page cache with clean pages by reading a sparse file as
    large as the machine's memory (see ``--fill-page-cache``): the holes
    cost no disk reads, and the kernel evicts these pages first when an
    import needs memory, since nothing touches them again."""
    ballast = os.path.join(work, "page-cache-ballast")
    size = psutil.virtual_memory().total
    # "wb" empties the file first, dropping whatever is still cached of
    # it, so every import starts with these pages read exactly once: a
    # second read of pages still cached would count as a second use, and
    # the kernel's LRU would keep them over the data the import stages.
    with open(ballast, "wb") as fh:
        fh.truncate(size)
    with open(ballast, "rb", buffering=0) as fh:
        while fh.read(8 * MiB):
            pass


def floor(src: str, src_fmt: str, fmt: str, work: str) -> float:
    dst = os.path.join(work, "floor." + fmt)
    drop_file(dst)
    start = time.monotonic()
    subprocess.run(["qemu-img", "convert", "-f", src_fmt, "-O", fmt, src,
                    dst], check=True)
    elapsed = time.monotonic() - start
    drop_file(dst)
    return elapsed


def engine_rows(cases, work: str, repeat: int) -> list:
    """Conversion only, no Glance: Glance's exact command line
    (``qemu-img convert -f F -O T``) vs our engine (measure, free space,
    slot, tuned and bounded convert, verification), alternated."""
    from glance_ext.conversion import engine as engine_mod
    from glance_ext.conversion import settings as settings_mod

    eng = engine_mod.ConversionEngine(settings_mod.Settings(
        lock_dir=os.path.join(work, "locks"), free_space_reserve=0))
    rows = []
    for src_fmt, path, target in cases:
        if src_fmt == target or not repeat:
            continue
        theirs, ours = [], []
        for _ in range(repeat):
            dst = os.path.join(work, "engine-out")
            drop_file(dst)
            start = time.monotonic()
            subprocess.run(["qemu-img", "convert", "-f", src_fmt, "-O",
                            target, path, dst], check=True)
            theirs.append(time.monotonic() - start)
            drop_file(dst)
            start = time.monotonic()
            eng.convert(path, src_fmt, dst, target)
            ours.append(time.monotonic() - start)
            drop_file(dst)
        rows.append({"source": src_fmt, "target": target,
                     "glance_command_seconds": median(theirs),
                     "ours_seconds": median(ours),
                     "runs": repeat})
    return rows


class SystemWatch(object):
    """The machine-wide side of one measured span: the kernel's page
    reclaim (pages kswapd and direct reclaim scanned, direct-reclaim
    stalls), kswapd's own CPU, and all CPUs' system, softirq and iowait
    time. A stream whose cost grows faster than its size is suspected of
    meeting reclaim when the page cache is full; these say whether it
    did. Steal time says whether the host took the CPUs away. Linux
    only."""

    VMSTAT = ("pgscan_kswapd", "pgscan_direct", "allocstall_normal",
              "allocstall_movable")
    # Steal: the time the hypervisor ran something else on our CPUs.
    CPU_TIMES = ("system", "iowait", "softirq", "steal")

    # Free memory handed back to the host by free page reporting, in KiB
    # (only some VM kernels expose this count; mainline does not).
    REPORTED = "/sys/module/page_reporting/parameters/reported_kib"

    def __init__(self) -> None:
        self.kswapd = [proc for proc in psutil.process_iter(["name"])
                       if (proc.info["name"] or "").startswith("kswapd")]
        self.free_at_start = psutil.virtual_memory().free
        self.start = self._snapshot()

    def _snapshot(self) -> dict:
        # psutil does not read /proc/vmstat's reclaim counters.
        values = {}
        with open("/proc/vmstat") as fh:
            for line in fh:
                key, _, number = line.partition(" ")
                if key in self.VMSTAT:
                    values[key] = int(number)
        times = psutil.cpu_times()
        for key in self.CPU_TIMES:
            values["all_cpus_" + key] = getattr(times, key)
        values["kswapd_cpu"] = sum(
            _busy(proc) for proc in self.kswapd)
        try:
            with open(self.REPORTED) as fh:
                values["reported_to_host_kib"] = int(fh.read())
        except (OSError, ValueError):
            pass
        return values

    def stop(self) -> dict:
        end = self._snapshot()
        used = {key: end[key] - self.start[key] for key in end}
        used["reclaim_scanned_gib"] = (
            used.pop("pgscan_kswapd") + used.pop("pgscan_direct")
        ) * os.sysconf("SC_PAGE_SIZE") / 2 ** 30
        used["direct_reclaim_stalls"] = (
            used.pop("allocstall_normal") + used.pop("allocstall_movable"))
        used["free_at_start_gib"] = self.free_at_start / 2 ** 30
        used["reported_to_host_gib"] = (
            used.pop("reported_to_host_kib", float("nan")) / 2 ** 20)
        return used


def _busy(proc: psutil.Process) -> float:
    """User + system CPU seconds of ``proc``."""
    times = proc.cpu_times()
    return times.user + times.system


class CpuWatch(object):
    """Where one import's CPU goes in glance-api's worker processes (the
    children of the gunicorn master ``master``): per thread, CPU time and
    run-queue wait (``schedstat``), sampled every 0.25 s so a thread that
    ends before the import does is still counted up to its last sample;
    per process, the CPU of the whole worker and of the children it has
    reaped (qemu-img; nbdcopy with the qemu-nbd it ran). Linux only."""

    def __init__(self, master: int) -> None:
        self.workers = psutil.Process(master).children()
        self.first = {}
        self.last = {}
        self.done = threading.Event()
        self.proc0 = self._processes()
        self.system = SystemWatch()
        self._sample(initial=True)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _processes(self) -> tuple:
        own = children = 0.0
        for worker in self.workers:
            times = worker.cpu_times()
            own += times.user + times.system
            children += times.children_user + times.children_system
        return own, children

    def _sample(self, initial: bool = False) -> None:
        for worker in self.workers:
            for thread in worker.threads():
                tid = thread.id
                # psutil does not read schedstat (the run-queue wait).
                try:
                    with open("/proc/%d/task/%d/schedstat"
                              % (worker.pid, tid)) as fh:
                        wait_ns = int(fh.read().split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                value = (thread.user_time + thread.system_time, wait_ns / 1e9)
                # A thread first seen after the start began at zero.
                self.first.setdefault(tid, value if initial else (0.0, 0.0))
                self.last[tid] = value

    def _run(self) -> None:
        while not self.done.wait(0.25):
            self._sample()

    def stop(self) -> dict:
        self.done.set()
        self.thread.join()
        self._sample()
        own, children = self._processes()
        used = {tid: (self.last[tid][0] - self.first[tid][0],
                      self.last[tid][1] - self.first[tid][1])
                for tid in self.last}
        busiest = max(used.values(), default=(0.0, 0.0))
        return {"upload_thread_cpu": busiest[0],
                "upload_thread_runq_wait": busiest[1],
                "worker_cpu": own - self.proc0[0],
                "children_cpu": children - self.proc0[1],
                **self.system.stop()}


def task_phases(glance, image_id: str) -> dict:
    """From glance-api's log: ``plugin_seconds``, the task's start to the
    store upload's start (every plugin runs in between), and
    ``task_seconds``, the task's start to its success (the whole import,
    without the client's 0.5 s status polling)."""
    import datetime
    started = uploading = finished = last_processing = None
    task_id = None
    with open(glance.log_path, errors="replace") as fh:
        for line in fh:
            if "status changing from pending to processing" in line:
                last_processing = line
            if image_id in line and "Got image data uri" in line:
                uploading = line
                started = last_processing
                task_id = line.split("Task ")[1].split(":")[0]
            if task_id and task_id in line and \
                    "status changing from processing to success" in line:
                finished = line

    def ts(line):
        return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
    nan = float("nan")
    return {
        "plugin_seconds": (ts(uploading) - ts(started)).total_seconds()
        if started and uploading else nan,
        "task_seconds": (ts(finished) - ts(started)).total_seconds()
        if started and finished else nan}


PROFILE_HZ = 20


def py_spy(pid: int, out: str) -> subprocess.Popen:
    """py-spy recording every process under ``pid`` into ``out`` (raw,
    one line per distinct stack with its sample count) until SIGINT."""
    spy = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "py-spy"), "record",
         "--pid", str(pid), "--subprocesses", "--threads", "--native",
         "--rate", str(PROFILE_HZ), "--format", "raw", "--output", out],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)  # py-spy attaches before the import starts
    if spy.poll() is not None:
        raise SystemExit("py-spy did not start (pip install py-spy; it "
                         "needs ptrace rights over glance-api)")
    return spy


def busiest_thread(path: str, top: int = 8) -> dict:
    """From a py-spy raw file: the busiest thread's seconds, and its
    seconds by innermost function and by innermost Python line."""
    by_thread = {}
    with open(path) as fh:
        for line in fh:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = stack.split(";")
            thread = next(f for f in frames if f.startswith("thread ("))
            by_thread.setdefault(thread, []).append((frames, int(count)))
    thread, samples = max(by_thread.items(),
                          key=lambda kv: sum(n for _, n in kv[1]))
    leaf, line_of = {}, {}
    for frames, n in samples:
        name = frames[-1].split(" (")[0]
        leaf[name] = leaf.get(name, 0) + n
        python = [f for f in frames if ".py:" in f]
        at = python[-1].rsplit("/", 1)[-1].rstrip(")") if python else "-"
        line_of[at] = line_of.get(at, 0) + n

    def seconds(counts):
        return dict(sorted(((k, v / PROFILE_HZ) for k, v in counts.items()),
                           key=lambda kv: -kv[1])[:top])
    return {"seconds": sum(n for _, n in samples) / PROFILE_HZ,
            "innermost": seconds(leaf), "python_line": seconds(line_of)}


def timed_import(glance, path: str, disk_format: str,
                 cpu: bool = False, profile: str = None,
                 fill_cache: str = None) -> dict:
    if fill_cache:
        fill_page_cache(fill_cache)
    proc = glance.glance("image-create", "--disk-format", disk_format,
                         "--container-format", "bare", "--name", "bench")
    image_id = client.parse_table(proc.stdout)["id"]
    with open(path, "rb") as data:
        glance.glance("image-stage", image_id, stdin=data)
    # Start every timed import with no writeback pending (the staged data,
    # the previous import's store file): on one disk that backlog would
    # land in whichever import runs next.
    os.sync()
    peak = [allocated(glance.staging_dir)]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], allocated(glance.staging_dir))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    watch = CpuWatch(glance.pid) if cpu else None
    spy = py_spy(glance.pid, profile) if profile else None
    start = time.monotonic()
    glance.glance("image-import", image_id, "--import-method",
                  "glance-direct")
    image = glance.wait_import(image_id, timeout=3600)
    elapsed = time.monotonic() - start
    done.set()
    sampler.join()
    used = watch.stop() if watch else {}
    if spy:
        spy.send_signal(signal.SIGINT)
        spy.wait(120)
        used["profile"] = busiest_thread(profile)
    if image["status"] != "active":
        raise SystemExit("import failed: %s\n%s" % (image, glance.log_tail()))
    glance.glance("image-delete", image_id)
    return dict(task_phases(glance, image_id), seconds=elapsed,
                peak_staging_bytes=peak[0], disk_format=image["disk_format"],
                size=image["size"], **used)


SYSTEM_KEYS = ("reclaim_scanned_gib", "direct_reclaim_stalls", "kswapd_cpu",
               "all_cpus_system", "all_cpus_softirq", "all_cpus_iowait",
               "all_cpus_steal", "free_at_start_gib",
               "reported_to_host_gib")
CPU_KEYS = ("upload_thread_cpu", "upload_thread_runq_wait", "worker_cpu",
            "children_cpu") + SYSTEM_KEYS


def system_columns(x: dict) -> str:
    """The SystemWatch columns of a table row ("-" for runs recorded
    before they existed)."""
    if "kswapd_cpu" not in x:
        return "- | - | - | - | -"
    return ("%.1f GiB | %.1f s | %.1f / %.1f / %.1f s | %.1f s | "
            "%.1f / %.1f GiB" % (
                x["reclaim_scanned_gib"], x["kswapd_cpu"],
                x["all_cpus_system"], x["all_cpus_softirq"],
                x["all_cpus_iowait"], x["all_cpus_steal"],
                x.get("free_at_start_gib", float("nan")),
                x.get("reported_to_host_gib", float("nan"))))


def summarize(runs: list) -> dict:
    """Medians of the timed fields, the largest peak, every run kept."""
    def middle(key):
        return median(r[key] for r in runs)
    cpu = {key: middle(key) for key in CPU_KEYS if key in runs[0]}
    return {**cpu, "seconds": middle("seconds"),
            "task_seconds": middle("task_seconds"),
            "plugin_seconds": middle("plugin_seconds"),
            "peak_staging_bytes": max(r["peak_staging_bytes"] for r in runs),
            "disk_format": runs[0]["disk_format"], "size": runs[0]["size"],
            "runs": runs}


def paired(runs: list, against: list) -> dict:
    """Each round's ratio of ``runs`` to ``against`` (same round, so the
    same state of the machine): the median and the range."""
    ratios = sorted(a["task_seconds"] / b["task_seconds"]
                    for a, b in zip(runs, against))
    return {"median": median(ratios), "min": ratios[0],
            "max": ratios[-1], "ratios": ratios}


def convert_options(items: list) -> dict:
    """``KEY=VALUE`` arguments as ``[glance_ext_convert]`` options."""
    options = {}
    for item in items:
        key, _, value = item.partition("=")
        options["glance_ext_convert." + key] = value
    return options


def start(state: str, plugins, options, thin: str = "true",
          chunk_kib: int = 0):
    os.environ["OS_DEFAULT__USE_STDERR"] = "true"
    api_options = {"fs.filesystem_thin_provisioning": thin}
    if chunk_kib:
        api_options["fs.filesystem_store_chunk_size"] = str(chunk_kib * 1024)
    return client.start_local_glance(
        state, plugins=plugins, import_options=options,
        api_options=api_options)


def ready_raw(path: str, src_fmt: str, work: str) -> str:
    """The raw output made beforehand, for the upload-only import."""
    out = os.path.join(work, os.path.basename(path) + ".ready.raw")
    if not os.path.exists(out):
        subprocess.run(["qemu-img", "convert", "-f", src_fmt, "-O", "raw",
                        path, out + ".tmp"], check=True)
        os.replace(out + ".tmp", out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=int, default=4)
    parser.add_argument("--work-dir", default="/var/tmp/glance-ext-bench")
    parser.add_argument("--vmdk", action="store_true")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the conversion-only comparison "
                             "(0: none)")
    parser.add_argument("--import-repeat", type=int, default=3,
                        help="imports per plugin and target, alternating "
                             "which goes first; medians are reported")
    parser.add_argument("--ours-option", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="extra [glance_ext_convert] option for our "
                             "Glance, e.g. cache_mode=writeback")
    parser.add_argument("--variant", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="[glance_ext_convert] option of a third "
                             "Glance (ours plus this), alternated with the "
                             "others in one run")
    parser.add_argument("--targets", default="raw,qcow2",
                        help="comma-separated targets for the qcow2 source")
    parser.add_argument("--skip-glance", action="store_true",
                        help="only the conversion-only comparison")
    parser.add_argument("--vmdk-target", default="qcow2",
                        choices=["qcow2", "raw"])
    parser.add_argument("--upload-only", action="store_true",
                        help="for raw rows, also time the upload of the "
                             "ready raw output through our Glance")
    parser.add_argument("--thin", default="true", choices=["true", "false"],
                        help="glance_store filesystem_thin_provisioning")
    parser.add_argument("--chunk-kib", type=int, default=0,
                        help="glance_store filesystem_store_chunk_size in "
                             "KiB for every Glance of the run (0: "
                             "local-glance's, 1024; glance_store's own "
                             "default is 64)")
    parser.add_argument("--cpu", action="store_true",
                        help="record where each import's CPU went "
                             "(upload thread, worker, its children)")
    parser.add_argument("--profile", metavar="DIR",
                        help="sample glance-api with py-spy during each "
                             "import, keep the stacks in DIR and report "
                             "where the upload thread's time went")
    parser.add_argument("--fill-page-cache", action="store_true",
                        help="start every import with the page cache full "
                             "of clean pages, so no import pays for "
                             "memory the VM's balloon handed back to the "
                             "host")
    args = parser.parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    t0 = time.monotonic()
    src = build_source(args.work_dir, args.size_gib)
    built = time.monotonic() - t0
    print("source %s (%.1f s to build or reuse)" % (src, built),
          file=sys.stderr)
    cases = [("qcow2", src, t) for t in args.targets.split(",") if t]
    if args.vmdk:
        vmdk = src.replace(".qcow2", ".vmdk")
        if not os.path.exists(vmdk):
            subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O",
                            "vmdk", "-o", "subformat=streamOptimized", src,
                            vmdk], check=True)
        cases.append(("vmdk", vmdk, args.vmdk_target))
    results = []
    engine = engine_rows(cases, args.work_dir, args.repeat)
    for src_fmt, path, target in ([] if args.skip_glance else cases):
        row = {"source": src_fmt, "target": target,
               "floor_seconds": floor(path, src_fmt, target, args.work_dir)}
        ours_options = {
            "glance_ext_convert.default_format": target,
            "glance_ext_convert.lock_dir": os.path.join(args.work_dir,
                                                        "locks")}
        ours_options.update(convert_options(args.ours_option))
        ours = start(os.path.join(args.work_dir, "ours-" + target),
                     ["glance_ext_validate", "glance_ext_convert"],
                     ours_options, args.thin, args.chunk_kib)
        variant = None
        if args.variant:
            variant = start(os.path.join(args.work_dir, "variant-" + target),
                            ["glance_ext_validate", "glance_ext_convert"],
                            dict(ours_options,
                                 **convert_options(args.variant)),
                            args.thin, args.chunk_kib)
        theirs = start(os.path.join(args.work_dir, "glance-" + target),
                       ["image_conversion"],
                       {"image_conversion.output_format": target},
                       args.thin, args.chunk_kib)
        runs = {"glance": [], "ours": []}
        if variant:
            runs["variant"] = []
        upload_src = None
        if args.upload_only and target == "raw":
            upload_src = ready_raw(path, src_fmt, args.work_dir)
            runs["upload"] = []
        try:
            for round_no in range(args.import_repeat):
                # alternate who goes first: the page cache and the disk's
                # writeback of the previous import favour one side
                order = [("glance", theirs, path, src_fmt),
                         ("ours", ours, path, src_fmt)]
                if variant:
                    order.append(("variant", variant, path, src_fmt))
                if upload_src:
                    order.append(("upload", ours, upload_src, "raw"))
                if round_no % 2:
                    order.reverse()
                for name, glance, data, fmt in order:
                    profile = None
                    if args.profile:
                        os.makedirs(args.profile, exist_ok=True)
                        profile = os.path.join(args.profile, "%s-%s-%d.txt" % (
                            target, name, round_no))
                    runs[name].append(timed_import(
                        glance, data, fmt, args.cpu, profile,
                        args.work_dir if args.fill_page_cache else None))
        finally:
            ours.down()
            theirs.down()
            if variant:
                variant.down()
        for name in runs:
            row[name] = summarize(runs[name])
        row["ratio"] = (row["glance"]["task_seconds"]
                        / row["ours"]["task_seconds"])
        if "upload" in row:
            row["ratio_to_upload"] = (row["ours"]["task_seconds"]
                                      / row["upload"]["task_seconds"])
            row["paired_to_upload"] = {
                name: paired(runs[name], runs["upload"])
                for name in runs if name != "upload"}
        if variant:
            row["variant_options"] = args.variant
            row["variant_to_ours"] = paired(runs["variant"], runs["ours"])
        row["thin_provisioning"] = args.thin
        row["fill_page_cache"] = args.fill_page_cache
        row["chunk_kib"] = (args.chunk_kib
                            or config_files.STORE_CHUNK_SIZE // 1024)
        row["source_bytes"] = os.path.getsize(path)
        results.append(row)
        print(json.dumps(row), file=sys.stderr)
    out_dir = os.path.join(ROOT, "bench", "out")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "convert_bench.json"), "w") as fh:
        json.dump({"imports": results, "conversion_only": engine}, fh,
                  indent=2)
    print("Conversion only (median of %d):\n" % args.repeat)
    print("| source -> target | Glance's command | glance_ext engine | "
          "speed-up |")
    print("|---|---|---|---|")
    for r in engine:
        print("| %s -> %s | %.1f s | %.1f s | %.2fx |" % (
            r["source"], r["target"], r["glance_command_seconds"],
            r["ours_seconds"],
            r["glance_command_seconds"] / r["ours_seconds"]))
    if not results:
        return 0
    print("\nThrough glance-api (the import task from start to success in "
          "glance-api's log, median of %d):\n" % args.import_repeat)
    print("| source -> target | plain qemu-img convert | Glance "
          "image_conversion: import (plugin phase) | glance_ext: import "
          "(plugin phase) | speed-up import (plugin phase) | single runs "
          "Glance / ours | peak staging Glance / ours |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        g, o = r["glance"], r["ours"]
        print("| %s -> %s | %.1f s | %.1f s (%.1f s) | %.1f s (%.1f s) | "
              "%.2fx (%.2fx) | %s / %s s | %.2f / %.2f GiB |" % (
                  r["source"], r["target"], r["floor_seconds"],
                  g["task_seconds"], g["plugin_seconds"], o["task_seconds"],
                  o["plugin_seconds"], r["ratio"],
                  g["plugin_seconds"] / o["plugin_seconds"],
                  " ".join("%.1f" % x["task_seconds"] for x in g["runs"]),
                  " ".join("%.1f" % x["task_seconds"] for x in o["runs"]),
                  g["peak_staging_bytes"] / 1024 ** 3,
                  o["peak_staging_bytes"] / 1024 ** 3))
    streamed = [r for r in results if "upload" in r]
    if streamed:
        print("\nRaw targets against the upload alone (thin provisioning "
              "%s, %s, median of %d):\n" % (
                  args.thin, "every import starting with the page cache "
                  "full" if args.fill_page_cache else "page cache as the "
                  "previous import left it", args.import_repeat))
        print("| source -> target | glance_ext import | Glance upload-only "
              "of the same output | ours / upload-only | Glance "
              "image_conversion import | Glance / ours | peak staging ours "
              "(source) |")
        print("|---|---|---|---|---|---|---|")
        for r in streamed:
            print("| %s -> %s | %.1f s | %.1f s | %.2f | %.1f s | %.2fx | "
                  "%.2f GiB (%.2f GiB) |" % (
                      r["source"], r["target"], r["ours"]["task_seconds"],
                      r["upload"]["task_seconds"], r["ratio_to_upload"],
                      r["glance"]["task_seconds"], r["ratio"],
                      r["ours"]["peak_staging_bytes"] / 1024 ** 3,
                      r["source_bytes"] / 1024 ** 3))
        print("\nPer-round ratios to the upload-only import of the same "
              "round (median, range):\n")
        print("| source -> target | import | ratio to upload-only | "
              "range |")
        print("|---|---|---|---|")
        for r in streamed:
            for name, p in sorted(r["paired_to_upload"].items()):
                label = {"glance": "Glance image_conversion",
                         "ours": "glance_ext",
                         "variant": "glance_ext with %s"
                         % " ".join(r.get("variant_options", []))}[name]
                print("| %s -> %s | %s | %.3f | %.3f-%.3f |" % (
                    r["source"], r["target"], label, p["median"], p["min"],
                    p["max"]))
    cpu_rows = [r for r in results if "upload_thread_cpu" in r["ours"]]
    if cpu_rows:
        print("\nWhere the CPU went (median per import): glance-api's "
              "upload thread, its run-queue wait, the whole worker, and "
              "the processes it ran:\n")
        print("| source -> target | import | whole import | upload thread "
              "CPU | upload thread run-queue wait | worker CPU | qemu-img / "
              "nbdcopy + qemu-nbd CPU | page reclaim scanned | kswapd CPU "
              "| all CPUs system / softirq / iowait | steal | memory free "
              "at start / reported to the host |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in cpu_rows:
            for name in ("glance", "ours", "variant", "upload"):
                if name not in r:
                    continue
                x = r[name]
                print("| %s -> %s | %s | %.1f s | %.1f s | %.2f s | %.1f s "
                      "| %.1f s | %s |" % (
                          r["source"], r["target"], name, x["task_seconds"],
                          x["upload_thread_cpu"],
                          x["upload_thread_runq_wait"], x["worker_cpu"],
                          x["children_cpu"], system_columns(x)))
    for r in results:
        if "variant_to_ours" in r:
            p = r["variant_to_ours"]
            print("\n%s -> %s: glance_ext with %s / glance_ext, per round: "
                  "median %.3f (%.3f-%.3f); medians %.1f s / %.1f s" % (
                      r["source"], r["target"],
                      " ".join(r["variant_options"]), p["median"], p["min"],
                      p["max"], r["variant"]["task_seconds"],
                      r["ours"]["task_seconds"]))
    print_profiles(results)
    return 0


def print_profiles(results: list) -> None:
    """The ``--profile`` table: per import, where the upload thread's
    samples went."""
    lines = []
    for r in results:
        for name in ("glance", "ours", "variant", "upload"):
            for round_no, run in enumerate(r.get(name, {}).get("runs", [])):
                if "profile" not in run:
                    continue
                p = run["profile"]
                lines.append("| %s -> %s | %s | %d | %.0f s | %s | %s |" % (
                    r["source"], r["target"], name, round_no, p["seconds"],
                    "; ".join("%s %.1f s" % kv
                              for kv in p["innermost"].items()),
                    "; ".join("%s %.1f s" % kv
                              for kv in p["python_line"].items())))
    if lines:
        print("\nWhere the upload thread's time went (py-spy samples at "
              "%d Hz, running or blocked in a system call):\n" % PROFILE_HZ)
        print("| source -> target | import | round | sampled | innermost "
              "function | innermost Python line |")
        print("|---|---|---|---|---|---|")
        print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
