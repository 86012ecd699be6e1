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

"""qemu-img, always under resource limits and a timeout.

qemu-img parses untrusted images. A crafted header can make it allocate
gigabytes or spin for minutes, so every call runs under
``oslo_concurrency.prlimit`` (CPU seconds, address space and, for commands
that write, file size) and a wall-clock timeout after which the process is
killed (processutils only *raises* on timeout and would leave the child
running). This module is the one way glance_ext runs qemu-img: short calls
go through ``QemuImg.run``; a conversion, which must be read while it runs,
starts ``limited_command`` itself (``conversion.process``). Formats are
always given
explicitly (``-f``): qemu's probing is exactly what crafted images abuse.
Callers pass Glance disk_format names; the map in ``formats`` turns them into
qemu driver names.
"""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from oslo_concurrency import processutils
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units

from glance_ext import exceptions
from glance_ext.qemu import formats

LOG = logging.getLogger(__name__)
_PYTHON_NAME = re.compile(r"^(python|pypy)[0-9.]*$")


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits for one qemu-img process."""

    cpu_seconds: int = 8
    address_space_bytes: int = 1 * units.Gi
    timeout_seconds: float = 60.0
    # Only for commands that write (convert, dd): caps the output file.
    file_size_bytes: Optional[int] = None

    def prlimit(self) -> processutils.ProcessLimits:
        kwargs = {"cpu_time": self.cpu_seconds,
                  "address_space": self.address_space_bytes}
        if self.file_size_bytes is not None:
            kwargs["file_size"] = self.file_size_bytes
        return processutils.ProcessLimits(**kwargs)


# What to do when the qemu-img binary cannot be run.
MISSING_FIX = ("install qemu-img (Debian/Ubuntu: qemu-utils; RHEL: qemu-img) "
               "on the Glance host, or set the qemu_img option to its path")


class QemuImgError(Exception):
    """qemu-img failed, was killed by a limit, timed out or is missing.

    ``kind`` is one of ``failed``, ``limit``, ``timeout``, ``missing``.
    ``stderr`` is for operator logs only: it can name host paths, so it must
    never be copied into a message an API user sees.
    """

    def __init__(self, kind: str, message: str, returncode: Optional[int] = None,
                 stderr: str = "", fix: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.returncode = returncode
        self.stderr = stderr
        # For ``missing``: what the operator installs or sets.
        self.fix = fix or (MISSING_FIX if kind == "missing" else "")


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float


class QemuImg:
    """A qemu-img binary plus the limits its calls run under."""

    def __init__(self, binary: str = "qemu-img",
                 python_exec: Optional[str] = None,
                 limits: Limits = Limits()) -> None:
        self.binary = binary
        self._python_exec = python_exec
        self.limits = limits

    @property
    def python_exec(self) -> str:
        """The wrapper's interpreter, resolved at the first call (raises
        InterpreterUnusable: a host problem, reported as ``missing``)."""
        if self._python_exec is None:
            self._python_exec = interpreter()
        return self._python_exec

    def run(self, args: Sequence[str], *, limits: Optional[Limits] = None,
            ok_codes: Sequence[int] = (0,)) -> Result:
        """Run ``qemu-img ARGS`` under limits; raise QemuImgError otherwise."""
        limits = limits or self.limits
        procs: List[subprocess.Popen] = []
        start = time.monotonic()
        cmd = [self.binary] + [str(a) for a in args]
        try:
            python_exec = self.python_exec
        except InterpreterUnusable as exc:
            raise QemuImgError("missing", "%s cannot be used on this host: "
                               "%s" % (exc.tool, exc.reason), fix=exc.fix)
        try:
            stdout, stderr = processutils.execute(
                *cmd, prlimit=limits.prlimit(), python_exec=python_exec,
                timeout=limits.timeout_seconds, check_exit_code=False,
                env_variables=child_env(),
                on_execute=procs.append,
                log_errors=processutils.LOG_FINAL_ERROR)
        except subprocess.TimeoutExpired:
            for proc in procs:
                _kill(proc)
            raise QemuImgError(
                "timeout", "qemu-img %s did not finish within %ss"
                % (args[0], limits.timeout_seconds))
        except OSError as exc:
            raise QemuImgError("missing", "cannot run %s: %s"
                               % (self.binary, exc.strerror or exc))
        elapsed = time.monotonic() - start
        returncode = procs[0].returncode if procs else 0
        if returncode < 0:
            # Killed by a signal: SIGXCPU/SIGKILL from the CPU limit, or
            # SIGABRT/SIGSEGV when an allocation failed under RLIMIT_AS.
            raise QemuImgError(
                "limit", "qemu-img %s was killed by signal %d (resource "
                "limit: %ds CPU, %d MiB address space)"
                % (args[0], -returncode, limits.cpu_seconds,
                   limits.address_space_bytes // units.Mi),
                returncode, stderr)
        if returncode not in ok_codes:
            kind = "failed"
            if "failed to execute" in stderr:   # from oslo's prlimit wrapper
                kind = "missing"
            elif "Cannot allocate memory" in stderr or \
                    "failed to allocate" in stderr:
                kind = "limit"
            raise QemuImgError(kind, "qemu-img %s exited with status %d"
                               % (args[0], returncode), returncode, stderr)
        return Result(returncode, stdout, stderr, elapsed)

    def version(self) -> str:
        """The qemu-img version string, e.g. ``7.2.22``."""
        out = self.run(["--version"]).stdout
        first = out.splitlines()[0] if out else ""
        parts = first.split()
        return parts[2] if len(parts) > 2 else first

    def info(self, path: str, disk_format: str, *,
             limits: Optional[Limits] = None) -> Dict[str, Any]:
        """``qemu-img info`` as a dict; never follows backing files."""
        res = self.run(["info", "-f", formats.to_qemu(disk_format),
                        "--output=json", path], limits=limits)
        return _parse_json(res.stdout, "info")

    def measure(self, path: str, disk_format: str, output_format: str, *,
                limits: Optional[Limits] = None) -> Dict[str, Any]:
        """``qemu-img measure``: required/fully-allocated bytes for a convert."""
        res = self.run(["measure", "-f", formats.to_qemu(disk_format),
                        "-O", formats.to_qemu(output_format),
                        "--output=json", path], limits=limits)
        return _parse_json(res.stdout, "measure")

    def check(self, path: str, disk_format: str, *,
              limits: Optional[Limits] = None) -> Dict[str, Any]:
        """``qemu-img check``; adds ``returncode`` (0 clean, 2 corrupt,
        3 leaks only, 63 unsupported by the format)."""
        res = self.run(["check", "-f", formats.to_qemu(disk_format),
                        "--output=json", path], limits=limits,
                       ok_codes=(0, 2, 3, 63))
        data = _parse_json(res.stdout, "check") if res.stdout.strip() else {}
        data["returncode"] = res.returncode
        return data

    def compare(self, path_a: str, format_a: str, path_b: str, format_b: str,
                *, strict: bool = False,
                limits: Optional[Limits] = None) -> bool:
        """True when both images have the same guest-visible content."""
        args = ["compare", "-f", formats.to_qemu(format_a),
                "-F", formats.to_qemu(format_b)]
        if strict:
            args.append("-s")
        res = self.run(args + [path_a, path_b], limits=limits,
                       ok_codes=(0, 1))
        return res.returncode == 0

    def convert(self, src: str, src_format: str, dst: str, dst_format: str,
                *, options: Sequence[str] = (), extra_args: Sequence[str] = (),
                limits: Optional[Limits] = None) -> Result:
        """``qemu-img convert``; ``options`` become ``-o a=b,c=d``."""
        args = ["convert", "-f", formats.to_qemu(src_format),
                "-O", formats.to_qemu(dst_format)]
        if options:
            args += ["-o", ",".join(options)]
        args += list(extra_args) + [src, dst]
        return self.run(args, limits=limits)

    def dd_head(self, src: str, src_format: str, dst: str, nbytes: int, *,
                block_size: int = 64 * units.Ki,
                limits: Optional[Limits] = None) -> Result:
        """Copy the first ``nbytes`` of guest data into a raw file.

        Used to look at what a container image carries without reading all
        of it (nested-image inspection).
        """
        count = max(1, -(-nbytes // block_size))
        return self.run(["dd", "-f", formats.to_qemu(src_format), "-O", "raw",
                         "bs=%d" % block_size, "count=%d" % count,
                         "if=%s" % src, "of=%s" % dst], limits=limits)


class InterpreterUnusable(exceptions.ToolUnavailable):
    """The prlimit wrapper has no Python to run under (uWSGI, mod_wsgi)."""


def interpreter() -> str:
    """The Python that runs ``oslo_concurrency.prlimit``.

    Under uWSGI or mod_wsgi ``sys.executable`` is the server binary, and
    ``<server> -m oslo_concurrency.prlimit`` is no Python at all: every
    qemu-img call would "fail" and each image would look broken. Glance's
    own ``[wsgi] python_interpreter`` names the interpreter Glance uses for
    the same wrapper, so it is followed when set; otherwise an embedded
    interpreter is refused with a message naming that setting (an
    environment fault, never a bad image).
    """
    try:
        configured = cfg.CONF.wsgi.python_interpreter
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError, AttributeError,
            cfg.RequiredOptError):
        configured = None
    if configured:
        if not (os.path.isfile(configured) and os.access(configured,
                                                         os.X_OK)):
            raise InterpreterUnusable(
                tool="the Python interpreter %s" % configured,
                reason="[wsgi] python_interpreter names no executable file",
                fix="set it to the Python of Glance's environment, e.g. %s"
                    % suggested_interpreter())
        return configured
    if not is_python(sys.executable):
        raise InterpreterUnusable(
            tool="qemu-img under oslo's prlimit wrapper",
            reason="glance-api runs embedded in %s, which is not a Python "
                   "interpreter" % (sys.executable or "a server binary"),
            fix="set [wsgi] python_interpreter = %s in glance-api.conf "
                "(uWSGI and mod_wsgi need it)" % suggested_interpreter())
    return sys.executable


def is_python(executable: str) -> bool:
    """Whether ``executable`` is a Python interpreter (not uwsgi/httpd)."""
    if not executable or "uwsgi" in sys.modules or "mod_wsgi" in sys.modules:
        return False
    names = {os.path.basename(executable),
             os.path.basename(os.path.realpath(executable))}
    return any(_PYTHON_NAME.match(name) for name in names)


def suggested_interpreter() -> str:
    """The Python of this environment, for messages that ask for one."""
    for name in ("python3", "python"):
        candidate = os.path.join(sys.prefix, "bin", name)
        if os.path.isfile(candidate):
            return candidate
    return "/path/to/glance-venv/bin/python3"


def limited_command(cmd: Sequence[str], limits: Limits,
                    python_exec: Optional[str] = None) -> List[str]:
    """``cmd`` behind the ``oslo_concurrency.prlimit`` wrapper, exactly as
    ``processutils.execute(prlimit=...)`` runs it, for a caller that must
    start and watch the process itself. The wrapper execs ``cmd``, so the
    pid, exit status and signals are the command's own."""
    return ([python_exec or interpreter(), "-m", "oslo_concurrency.prlimit"]
            + limits.prlimit().prlimit_args() + ["--"] + [str(c) for c in cmd])


def child_env() -> Dict[str, str]:
    # glibc gives each thread its own 64 MiB malloc arena; with qemu's I/O
    # threads that alone can exhaust an address-space limit at random.
    # Two arenas make qemu's footprint under RLIMIT_AS deterministic.
    env = dict(os.environ)
    env["MALLOC_ARENA_MAX"] = "2"
    env["LC_ALL"] = "C"
    return env


def _parse_json(text: str, what: str) -> Dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise QemuImgError("failed", "qemu-img %s printed no JSON" % what)
    if not isinstance(data, dict):
        raise QemuImgError("failed", "qemu-img %s printed unexpected JSON"
                           % what)
    return data


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group ``proc`` leads (it was started with
    ``start_new_session``/``setsid``), so helpers it started (qemu-nbd, a
    qemu-img behind ionice) go with it; ``proc`` alone if it leads none."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        LOG.warning("qemu-img pid %d did not exit after SIGKILL", proc.pid)
