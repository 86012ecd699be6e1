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
killed, and how it ended is judged by ``glance_ext.common.exits`` (which
needs the CPU it used, so calls run through ``exits.run``, not
processutils.execute). This module is the one way glance_ext runs
qemu-img: short calls go through ``QemuImg.run``; a conversion, which must
be read while it runs, starts ``limited_command`` itself
(``conversion.process``). Formats are always given explicitly (``-f``):
qemu's probing is exactly what crafted images abuse.
Callers pass Glance disk_format names; the map in ``formats`` turns them into
qemu driver names.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from oslo_concurrency import processutils
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units

from glance_ext import exceptions
from glance_ext.common import exits
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

# The errors are defined with all the others; these names are the ones
# callers of this module use.
QemuImgError = exceptions.QemuImgError
InterpreterUnusable = exceptions.InterpreterUnusable


def missing(message: str, fix: str = MISSING_FIX) -> QemuImgError:
    """The error for a qemu tool that cannot be run: the message says what
    to install or set."""
    return exceptions.qemu_error("missing", "%s; %s" % (message, fix),
                                 fix=fix)


def unusable_interpreter(exc: InterpreterUnusable) -> QemuImgError:
    return missing("%s cannot be used on this host: %s" % (exc.tool,
                                                           exc.reason),
                   exc.fix)


def exit_error(what: str, returncode: int, stderr: str, limits: "Limits",
               cpu_seconds: Optional[float] = None) -> QemuImgError:
    """The error for ``qemu-img <what>`` (or any process started under the
    same limits) that ended with ``returncode`` after ``cpu_seconds`` of
    CPU. The message uses fixed phrases only, never the tool's stderr (it
    may name host paths)."""
    ended = exits.classify(returncode, cpu_seconds, limits.cpu_seconds)
    if ended.kind == "limit":
        limit = {"CPU": "the CPU limit of %ds was reached"
                        % limits.cpu_seconds,
                 "file size": "its output grew past the file-size limit",
                 "address space": "the memory limit of %d MiB was reached"
                                  % (limits.address_space_bytes // units.Mi)}
        return exceptions.qemu_error(
            "limit", "%s was killed by %s: %s" % (
                what, ended.by, limit[ended.limit]),
            returncode, stderr)
    if ended.kind == "killed":
        return exceptions.qemu_error(
            "killed", "%s was killed by %s from outside"
            % (what, ended.by), returncode, stderr)
    if "failed to execute" in stderr:      # from oslo's prlimit wrapper
        return missing("%s could not be started" % what)
    for phrase, hint in _LIMIT_PHRASES:
        if phrase in stderr:
            return exceptions.qemu_error(
                "limit", "%s exited with status %d (%s)" % (
                    what, returncode, hint.format(
                        mib=limits.address_space_bytes // units.Mi)),
                returncode, stderr)
    return exceptions.qemu_error(
        "failed", "%s exited with status %d" % (what, returncode),
        returncode, stderr)


# What qemu prints when a limit, not the image, stopped it.
_LIMIT_PHRASES = (
    ("No space left", "no space left in the staging area"),
    ("File too large", "the output grew past the measured size"),
    ("Cannot allocate memory", "out of memory under the {mib} MiB limit"),
    ("failed to allocate", "out of memory under the {mib} MiB limit"),
)


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
        start = time.monotonic()
        cmd = [self.binary] + [str(a) for a in args]
        try:
            python_exec = self.python_exec
        except InterpreterUnusable as exc:
            raise unusable_interpreter(exc)
        try:
            done = exits.run(limited_command(cmd, limits, python_exec),
                             env=child_env(),
                             timeout=limits.timeout_seconds)
        except subprocess.TimeoutExpired:
            raise exceptions.qemu_error(
                "timeout", "qemu-img %s did not finish within %ss"
                % (args[0], limits.timeout_seconds))
        except OSError as exc:
            raise missing("cannot run %s: %s" % (self.binary,
                                                 exc.strerror or exc))
        elapsed = time.monotonic() - start
        if done.returncode not in ok_codes:
            raise exit_error("qemu-img %s" % args[0], done.returncode,
                             done.stderr, limits, done.cpu_seconds)
        return Result(done.returncode, done.stdout, done.stderr, elapsed)

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
        raise exceptions.qemu_error("failed",
                                    "qemu-img %s printed no JSON" % what)
    if not isinstance(data, dict):
        raise exceptions.qemu_error("failed",
                                    "qemu-img %s printed unexpected JSON"
                                    % what)
    return data


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group ``proc`` leads (it was started with
    ``start_new_session``/``setsid``), so helpers it started (qemu-nbd, a
    qemu-img behind ionice) go with it; ``proc`` alone if it leads none."""
    exits.kill(proc, group=True)
