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

"""``qemu-img convert`` tuned for throughput and bounded in every way.

``glance_ext.qemu.runner.QemuImg`` runs short commands through
``processutils.execute``, which returns only when the child ends; a
conversion needs its output read while it runs (progress) and a caller
that can stop it. So this module starts the process itself, with:

- ``-W`` (out-of-order writes), ``-m`` coroutines, ``-t`` cache mode,
  ``-S`` sparse size and ``-p`` progress;
- rlimits (CPU seconds, address space, file size: a lying image cannot
  write past what ``measure`` promised) through the same
  ``oslo_concurrency.prlimit`` wrapper as every other qemu-img call
  (``runner.limited_command``);
- CPU niceness (or the SCHED_IDLE policy, ``CpuPolicy``) and ``ionice``
  so a conversion does not starve the API workers and the store uploads
  on the same host;
- a wall-clock timeout, after which the process group is killed;
- ``PR_SET_PDEATHSIG`` so qemu-img dies with the Glance worker instead of
  writing into staging after a restart.
"""

import ctypes
import dataclasses
import enum
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any, Callable, List, Optional, Sequence

from oslo_log import log as logging

from glance_ext import exceptions
from glance_ext.common import exits
from glance_ext.conversion import progress as progress_mod
from glance_ext.qemu import formats
from glance_ext.qemu import runner

LOG = logging.getLogger(__name__)


class CpuPolicy(str, enum.Enum):
    """The scheduling policy of a conversion's processes (``cpu_policy``).

    NORMAL is the kernel's SCHED_OTHER, lowered by ``nice``: a niced
    process still takes its share of a CPU (about 10 % against a nice 0
    neighbour at nice 10), and on a streamed import that neighbour is the
    store upload reading what the producer writes. IDLE is SCHED_IDLE: the
    process runs only when no SCHED_OTHER thread wants the CPU, so the
    upload (and every API request) runs first and the conversion fills the
    gaps; on a host busy with other work it can wait for a long time,
    bounded by the conversion's wall-clock timeout."""
    NORMAL = "normal"
    IDLE = "idle"


@dataclasses.dataclass(frozen=True)
class CpuPriority:
    """What a conversion's processes get of the CPU: ``nice`` (0 keeps
    the Glance worker's) under ``policy``. Children inherit both."""
    nice: int = 0
    policy: CpuPolicy = CpuPolicy.NORMAL


@dataclasses.dataclass(frozen=True)
class Tuning:
    coroutines: int = 8
    out_of_order: bool = True
    cache_mode: str = "unsafe"
    sparse_size_kb: int = 4
    rate_limit_mb: int = 0
    nice: int = 10
    ionice_class: str = "best-effort"
    ionice_level: int = 7
    cpu_policy: CpuPolicy = CpuPolicy.NORMAL

    @property
    def cpu(self) -> CpuPriority:
        return CpuPriority(self.nice, self.cpu_policy)


# A conversion fails like any qemu-img call (glance_ext.exceptions).
ConvertError = exceptions.QemuImgError


def supports_direct_io(directory: str) -> bool:
    """True when files in ``directory`` can be opened with O_DIRECT
    (tmpfs and some FUSE filesystems cannot; qemu's cache=none would then
    fail)."""
    fd, path = tempfile.mkstemp(prefix=".glance_ext_odirect_", dir=directory)
    os.close(fd)
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_DIRECT", 0))
        os.close(fd)
        return True
    except OSError:
        return False
    finally:
        os.unlink(path)


def available_memory() -> Optional[int]:
    """The kernel's MemAvailable estimate in bytes, or None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# Without MemAvailable (not Linux?), the threshold falls back to this.
FALLBACK_DIRECT_THRESHOLD = 1024 * 1024 * 1024


def choose_cache_mode(configured: str, directory: str, output_bytes: int,
                      direct_threshold: int) -> str:
    """The ``-t`` mode for the output.

    The output is a temporary staging file that the store upload reads
    right after, so it goes through the page cache without a final flush
    (``unsafe``: a crash loses only an import that failed anyway) and the
    upload reads it from memory. Only an output whose data would take a
    large share of the host's memory is written with O_DIRECT (``none``),
    when the filesystem supports it, so it does not evict everything
    else. ``direct_threshold`` 0 means a quarter of MemAvailable now.
    bench/convert_bench.py could not tell the two apart on whole imports
    (0.87x-0.99x with O_DIRECT above 1 GiB, 0.97x-1.00x through the page
    cache, in a noise band of +-6 %): the rule follows the data path, the
    output is read back right after, as Glance's own conversion does.
    """
    if configured != "auto":
        return configured
    threshold = direct_threshold
    if not threshold:
        memory = available_memory()
        threshold = memory // 4 if memory else FALLBACK_DIRECT_THRESHOLD
    if output_bytes >= threshold and supports_direct_io(directory):
        return "none"
    return "unsafe"


def build_command(qemu_img: str, src: str, src_format: str, dst: str,
                  dst_format: str, create_options: Sequence[str],
                  tuning: Tuning) -> List[str]:
    """The command line: ``ionice`` (when wanted) + the tuned qemu-img.
    Limits and niceness are applied by ``run`` in the child."""
    qemu = [qemu_img, "convert", "-p", "-f", formats.to_qemu(src_format),
            "-O", formats.to_qemu(dst_format)]
    if create_options:
        qemu += ["-o", ",".join(create_options)]
    qemu += tuned_args(tuning, tuning.cache_mode, tuning.rate_limit_mb)
    return io_priority(tuning) + qemu + [src, dst]


def tuned_args(tuning: Tuning, cache_mode: Optional[str],
               rate_limit_mb: int) -> List[str]:
    """The throughput flags of ``qemu-img convert`` (``-t`` omitted when
    ``cache_mode`` is None: the target's cache is someone else's)."""
    args = ["-W"] if tuning.out_of_order else []
    args += ["-m", str(tuning.coroutines)]
    if cache_mode:
        args += ["-t", cache_mode]
    args += ["-S", "%dk" % tuning.sparse_size_kb]
    if rate_limit_mb:
        args += ["-r", "%dM" % rate_limit_mb]
    return args


def io_priority(tuning: Tuning) -> List[str]:
    """The ``ionice`` prefix for a command, or nothing."""
    if tuning.ionice_class == "none":
        return []
    ionice = shutil.which("ionice")
    if not ionice:
        LOG.warning("ionice not found; qemu-img runs at normal IO priority "
                    "(install util-linux)")
        return []
    if tuning.ionice_class == "idle":
        return [ionice, "-c", "3"]
    return [ionice, "-c", "2", "-n", str(tuning.ionice_level)]


_PR_SET_PDEATHSIG = 1


def _child_setup(cpu: CpuPriority) -> Callable[[], None]:
    """A ``preexec_fn`` for what prlimit does not cover: lower the CPU
    priority (nice, and SCHED_IDLE when asked), and ``PR_SET_PDEATHSIG``
    so qemu-img (which inherits it through the wrapper's exec) dies with
    the Glance worker instead of writing into staging after a restart.
    A policy the kernel refuses leaves the child at the normal one;
    ``spawn`` checks and warns, as nothing can be logged from here."""
    def setup() -> None:
        if cpu.nice:
            os.nice(cpu.nice)
        if cpu.policy is CpuPolicy.IDLE:
            try:
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            except OSError:
                pass
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except Exception:
            pass
    return setup


def spawn(command: Sequence[str], bounds: runner.Limits,
          cpu: CpuPriority = CpuPriority(),
          stdout: Any = subprocess.PIPE,
          stderr: Any = subprocess.PIPE) -> subprocess.Popen:
    """Start ``command`` behind the prlimit wrapper, at ``cpu``'s priority,
    in its own process group, dying with this process. Raises
    ConvertError."""
    try:
        argv = runner.limited_command(command, bounds)
    except runner.InterpreterUnusable as exc:
        raise runner.unusable_interpreter(exc)
    try:
        proc = subprocess.Popen(argv,
                                stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=stderr, env=runner.child_env(),
                                start_new_session=True,
                                preexec_fn=_child_setup(cpu),
                                close_fds=True)
    except OSError as exc:
        raise runner.missing("cannot run %s: %s" % (
            os.path.basename(str(command[0])), exc.strerror or exc))
    if cpu.policy is CpuPolicy.IDLE:
        _check_idle(proc.pid, command[0])
    return proc


def _check_idle(pid: int, binary: str) -> None:
    """Warn when the kernel kept a child out of SCHED_IDLE (a kernel
    without it, or a seccomp profile refusing sched_setscheduler): the
    conversion still runs, at the normal policy and its nice value."""
    try:
        policy = os.sched_getscheduler(pid)
    except OSError:
        return      # already gone: its exit status tells the rest
    if policy != os.SCHED_IDLE:
        LOG.warning("cpu_policy = idle, but %s (pid %d) runs at scheduling "
                    "policy %d: the kernel refused SCHED_IDLE; it runs at "
                    "the normal policy and its nice value",
                    os.path.basename(str(binary)), pid, policy)


def run(command: Sequence[str], bounds: runner.Limits, total_bytes: int,
        on_progress: Optional[progress_mod.Callback] = None,
        interval: float = 5.0,
        should_stop: Optional[Callable[[], bool]] = None,
        cpu: CpuPriority = CpuPriority()) -> float:
    """Run a convert command; return its elapsed seconds or raise
    ConvertError. ``stderr`` of the error is for logs only (host paths)."""
    return run_group([command], bounds, total_bytes, on_progress=on_progress,
                     interval=interval, should_stop=should_stop, cpu=cpu)


class _Child:
    def __init__(self, proc: subprocess.Popen, weight: float) -> None:
        self.proc = proc
        self.weight = weight
        self.parser = progress_mod.ProgressParser()
        self.stderr: List[bytes] = []
        # stdout is ours to read unless it was handed elsewhere (a stream).
        self.open_streams = 2 if proc.stdout is not None else 1
        # CPU seconds it used, read when it exits (common.exits.wait).
        self.cpu_seconds: Optional[float] = None

    def keep_stderr(self, data: bytes) -> None:
        if sum(len(c) for c in self.stderr) < 65536:
            self.stderr.append(data)

    @property
    def stderr_text(self) -> str:
        return b"".join(self.stderr).decode("utf-8", "replace")


def run_group(commands: Sequence[Sequence[str]], bounds: runner.Limits,
              total_bytes: int, *, weights: Optional[Sequence[float]] = None,
              on_progress: Optional[progress_mod.Callback] = None,
              interval: float = 5.0,
              should_stop: Optional[Callable[[], bool]] = None,
              cpu: CpuPriority = CpuPriority(),
              child_stdout: Optional[int] = None,
              progress_of: Optional[Callable[[], float]] = None,
              what: str = "qemu-img convert") -> float:
    """Run convert commands at once, each under ``bounds``, as one
    conversion: one progress (weighted by ``weights``), one wall-clock
    timeout, and the first failure stops them all. Returns the elapsed
    seconds or raises ConvertError (its stderr is for logs only).

    A streaming conversion (``conversion.stream``) hands its one command
    ``child_stdout``, the write end of the pipe its data leaves by (closed
    here once the child has it, so the reader sees the end when the child
    exits), and ``progress_of``, the percent done as counted by the
    reader; ``what`` names the command in errors."""
    start = time.monotonic()
    weights = list(weights or [1.0] * len(commands))
    total_weight = float(sum(weights)) or 1.0
    throttle = progress_mod.Throttle(on_progress, interval)
    children: List[_Child] = []
    out: Any = subprocess.PIPE if child_stdout is None else child_stdout
    try:
        for command, weight in zip(commands, weights):
            children.append(_Child(spawn(command, bounds, cpu, stdout=out),
                                   weight))
            LOG.debug("%s pid %d: %s", what, children[-1].proc.pid,
                      " ".join(command))
    except ConvertError:
        _stop(children, killed=True)
        raise
    finally:
        if child_stdout is not None:
            os.close(child_stdout)
    sel = selectors.DefaultSelector()
    for child in children:
        if child.proc.stdout is not None:
            sel.register(child.proc.stdout, selectors.EVENT_READ,
                         (child, "out"))
        sel.register(child.proc.stderr, selectors.EVENT_READ, (child, "err"))
    killed_for: Optional[str] = None
    failed: Optional[_Child] = None

    def report(final: bool = False) -> None:
        if progress_of is not None:
            pct = 100.0 if final else min(100.0, progress_of())
        else:
            pct = sum((c.parser.percent or 0.0) * c.weight
                      for c in children) / total_weight
        throttle(progress_mod.Progress(
            pct, int(total_bytes * pct / 100.0), total_bytes,
            time.monotonic() - start), final=final)

    try:
        report()
        while any(c.open_streams for c in children) and failed is None:
            remaining = bounds.timeout_seconds - (time.monotonic() - start)
            if remaining <= 0:
                killed_for = "timeout"
                break
            if should_stop is not None and should_stop():
                killed_for = "cancelled"
                break
            if child_stdout is not None:
                _reap_helpers(children)
            for key, _ in sel.select(timeout=min(1.0, remaining)):
                child, stream = key.data
                data = os.read(key.fileobj.fileno(), 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    child.open_streams -= 1
                    if not child.open_streams and _exit_status(
                            child, remaining) not in (None, 0):
                        failed = child
                    continue
                if stream == "out":
                    child.parser.feed(data)
                else:
                    child.keep_stderr(data)
            report()
    finally:
        sel.close()
        _stop(children, killed=bool(killed_for or failed),
              wait_seconds=bounds.timeout_seconds)
    elapsed = time.monotonic() - start
    if killed_for == "timeout":
        raise exceptions.qemu_error(
            "timeout", "%s did not finish within %ds and was "
            "killed" % (what, int(bounds.timeout_seconds)),
            stderr=_all_stderr(children))
    if killed_for == "cancelled":
        raise exceptions.qemu_error("cancelled",
                                    "the conversion was cancelled",
                                    stderr=_all_stderr(children))
    for child in ([failed] if failed else []) + children:
        if child.proc.returncode != 0:
            raise _failure(child, bounds, what)
    for child in children:
        child.parser.percent = 100.0
    report(final=True)
    return elapsed


def _reap_helpers(children: Sequence[_Child]) -> None:
    """A stream's producer (nbdcopy) that has exited, killed or not, may
    leave the helper it started (qemu-nbd) holding its pipes open, so its
    end would never be seen: kill what is left of its process group (the
    exited leader stays unreaped, so the group id cannot be reused)."""
    for child in children:
        if child.open_streams and \
                exits.cpu_seconds_if_exited(child.proc.pid) is not None:
            exits.kill_group(child.proc.pid)


def _exit_status(child: _Child, timeout: float) -> Optional[int]:
    """The exit status of a child whose output has closed (it is exiting);
    None if it has not exited within ``timeout``."""
    try:
        returncode, child.cpu_seconds = exits.wait(
            child.proc, timeout=max(0.1, min(timeout, 10)))
        return returncode
    except subprocess.TimeoutExpired:
        return None


def _stop(children: Sequence[_Child], killed: bool,
          wait_seconds: float = 10) -> None:
    """Reap every child; kill their process groups first when the
    conversion is being abandoned."""
    for child in children:
        if killed and child.proc.poll() is None:
            runner.kill_group(child.proc)
    for child in children:
        try:
            child.proc.wait(timeout=10 if killed else wait_seconds)
        except subprocess.TimeoutExpired:
            runner.kill_group(child.proc)
            child.proc.wait(timeout=10)
        for stream in (child.proc.stdout, child.proc.stderr):
            if stream is not None:
                stream.close()


def _all_stderr(children: Sequence[_Child]) -> str:
    return "\n".join(c.stderr_text for c in children if c.stderr)


def _failure(child: _Child, bounds: runner.Limits,
             what: str = "qemu-img convert") -> ConvertError:
    return runner.exit_error(what, child.proc.returncode,
                             child.stderr_text, bounds, child.cpu_seconds)
