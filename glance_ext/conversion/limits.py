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

"""Resource limits set between fork and exec, without a Python wrapper.

``oslo_concurrency.prlimit`` (what ``processutils.execute(prlimit=...)``
and ``glance_ext.qemu.runner`` use) starts a second Python interpreter per
call only to call ``setrlimit`` and exec; under load that costs 0.3-1 s,
and a conversion makes about six qemu-img calls (info, measure, convert,
and the verification's info/dd). The limits are the same kernel rlimits,
set here in the child before exec, together with the CPU niceness and
``PR_SET_PDEATHSIG`` (qemu-img dies with the Glance worker).
TODO(validate owner): the same could serve ``glance_ext.qemu.runner``.
"""

import ctypes
import os
import resource
import signal
import subprocess
import time
from typing import Callable, Optional, Sequence

from oslo_utils import units

from glance_ext.qemu import runner

_PR_SET_PDEATHSIG = 1


def child_setup(cpu_seconds: Optional[int] = None,
                address_space: Optional[int] = None,
                file_size: Optional[int] = None,
                nice: int = 0) -> Callable[[], None]:
    """A ``preexec_fn`` applying the limits; runs in the forked child."""
    def setup() -> None:
        for rlimit, value in ((resource.RLIMIT_CPU, cpu_seconds),
                              (resource.RLIMIT_AS, address_space),
                              (resource.RLIMIT_FSIZE, file_size)):
            if value is not None:
                resource.setrlimit(rlimit, (value, value))
        if nice:
            os.nice(nice)
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except Exception:
            pass
    return setup


class QemuImg(runner.QemuImg):
    """``runner.QemuImg`` with the limits applied in-process (same
    interface, same errors)."""

    def run(self, args: Sequence[str], *,
            limits: Optional[runner.Limits] = None,
            ok_codes: Sequence[int] = (0,)) -> runner.Result:
        limits = limits or self.limits
        cmd = [self.binary] + [str(a) for a in args]
        start = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=runner.child_env(), close_fds=True,
                preexec_fn=child_setup(limits.cpu_seconds,
                                       limits.address_space_bytes,
                                       limits.file_size_bytes),
                timeout=limits.timeout_seconds)
        except subprocess.TimeoutExpired:
            # subprocess.run has killed and reaped the child.
            raise runner.QemuImgError(
                "timeout", "qemu-img %s did not finish within %ss"
                % (args[0], limits.timeout_seconds))
        except OSError as exc:
            raise runner.QemuImgError("missing", "cannot run %s: %s"
                                      % (self.binary, exc.strerror or exc))
        stdout = proc.stdout.decode("utf-8", "replace")
        stderr = proc.stderr.decode("utf-8", "replace")
        rc = proc.returncode
        if rc < 0:
            raise runner.QemuImgError(
                "limit", "qemu-img %s was killed by signal %d (resource "
                "limit: %ds CPU, %d MiB address space)"
                % (args[0], -rc, limits.cpu_seconds,
                   limits.address_space_bytes // units.Mi), rc, stderr)
        if rc not in ok_codes:
            kind = "failed"
            if "Cannot allocate memory" in stderr or \
                    "failed to allocate" in stderr:
                kind = "limit"
            raise runner.QemuImgError(kind, "qemu-img %s exited with status "
                                      "%d" % (args[0], rc), rc, stderr)
        return runner.Result(rc, stdout, stderr, time.monotonic() - start)
