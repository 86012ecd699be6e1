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

"""What the exit status of a bounded child process means.

qemu-img, qemu-nbd and the guest inspection worker all run under
oslo.concurrency's prlimit (CPU seconds, address space, file size). How
each of them died decides whether the image is blamed (a limit it drove
the tool into), the tool (it failed), or someone outside (it was killed):
one classification for all of them, so the three callers agree.

- SIGXCPU: the CPU soft limit.
- SIGXFSZ: the file-size limit.
- SIGSEGV, SIGABRT, SIGBUS: what qemu does when an allocation fails under
  the address-space limit (it aborts, or faults on the failed pointer).
- SIGKILL: the CPU limit when the process had used its CPU seconds
  (oslo's prlimit sets the soft and the hard limit equal, and at the hard
  limit the kernel sends SIGKILL, not SIGXCPU); otherwise killed from
  outside (an operator, the OOM killer, a stop of glance-api). The CPU a
  child used is read from /proc before it is reaped (``wait``), which is
  why these children are run with ``run`` here and not through
  processutils.execute.
- Any other signal: killed from outside.
"""

import dataclasses
import os
import signal
import subprocess
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import psutil

LIMIT_SIGNALS = {signal.SIGXCPU: "CPU", signal.SIGXFSZ: "file size",
                 signal.SIGSEGV: "address space",
                 signal.SIGABRT: "address space",
                 signal.SIGBUS: "address space"}


@dataclasses.dataclass(frozen=True)
class Exit:
    """How a child ended: kind is ok, failed (non-zero
    status), limit (a resource limit) or killed (a signal from
    outside); limit names the limit."""

    kind: str
    returncode: int
    signal: Optional[int] = None
    limit: Optional[str] = None

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signal).name
        except (TypeError, ValueError):
            return "an unknown signal"

    @property
    def by(self) -> str:
        """"signal 9 (SIGKILL)", for messages."""
        return "signal %s (%s)" % (self.signal, self.signal_name)


def classify(returncode: int, cpu_seconds: Optional[float] = None,
             cpu_limit: Optional[float] = None) -> Exit:
    """The meaning of ``returncode`` (negative: the signal that ended it,
    as subprocess reports it), given the CPU seconds the child used and
    its CPU limit when known."""
    if returncode == 0:
        return Exit("ok", 0)
    if returncode > 0:
        return Exit("failed", returncode)
    signum = -returncode
    if signum in LIMIT_SIGNALS:
        return Exit("limit", returncode, signum, LIMIT_SIGNALS[signum])
    if signum == signal.SIGKILL and cpu_limit and cpu_seconds is not None \
            and cpu_seconds >= cpu_limit - _TICK_SLACK:
        return Exit("limit", returncode, signum, "CPU")
    return Exit("killed", returncode, signum)


# RLIMIT_CPU is checked at the scheduler tick; allow for its granularity.
_TICK_SLACK = 0.1


def cpu_seconds_if_exited(pid: int) -> Optional[float]:
    """CPU seconds (user + system) of child ``pid`` if it has exited and
    is not reaped yet (a zombie keeps its counters in /proc); None while it
    runs or when they cannot be read. It stays unreaped for the caller."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG |
                         os.WNOWAIT)
    except ChildProcessError:
        return None
    if info is None:
        return None
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def wait(proc: subprocess.Popen, timeout: Optional[float]
         ) -> Tuple[int, Optional[float]]:
    """Reap ``proc`` within ``timeout`` seconds (None: no limit); returns
    its returncode and the CPU seconds it used (None when unknown).
    Raises subprocess.TimeoutExpired like Popen.wait."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.001
    while True:
        cpu = cpu_seconds_if_exited(proc.pid)
        if cpu is not None or proc.poll() is not None:
            return proc.wait(), cpu
        if deadline is not None and time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


@dataclasses.dataclass
class Completed:
    """A child ``run`` waited for."""

    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: Optional[float]
    pid: int


def run(argv: Sequence[str], *, env: Dict[str, str], timeout: float,
        new_session: bool = False) -> Completed:
    """Run ``argv`` to its end, reading its output, within ``timeout``.

    On timeout the child (its process group with ``new_session``) is
    killed and reaped, then subprocess.TimeoutExpired is raised; OSError
    when it cannot be started.
    """
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, close_fds=True,
                            start_new_session=new_session)
    chunks: Dict[str, List[bytes]] = {"out": [], "err": []}

    def drain(stream: Any, key: str) -> None:
        for block in iter(lambda: stream.read(65536), b""):
            chunks[key].append(block)

    readers = [threading.Thread(target=drain, args=(proc.stdout, "out"),
                                daemon=True),
               threading.Thread(target=drain, args=(proc.stderr, "err"),
                                daemon=True)]
    for reader in readers:
        reader.start()
    try:
        returncode, cpu = wait(proc, timeout)
    except subprocess.TimeoutExpired:
        kill(proc, group=new_session)
        proc.wait()
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    return Completed(returncode,
                     b"".join(chunks["out"]).decode("utf-8", "replace"),
                     b"".join(chunks["err"]).decode("utf-8", "replace"),
                     cpu, proc.pid)


def kill_group(pgid: int) -> bool:
    """SIGKILL every process of group ``pgid``; False if none was left."""
    try:
        os.killpg(pgid, signal.SIGKILL)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill(proc: subprocess.Popen, group: bool = True) -> None:
    """SIGKILL ``proc`` (with ``group``, the process group it leads:
    helpers it started go with it)."""
    if group and kill_group(proc.pid):
        return
    try:
        proc.kill()
    except ProcessLookupError:
        pass
