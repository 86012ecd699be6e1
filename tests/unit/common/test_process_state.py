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

"""What glance_ext asks a process (through psutil), on real processes.

The bounded-child runner must read a child's CPU time while it is a
zombie and leave it unreaped (that is how a CPU-limit kill is told from a
kill from outside); the crash tests must not count a zombie as a live
member of a process group; the qemu helpers need a process's parent.
"""

import os
import signal
import subprocess
import sys
import time

from glance_ext.common import exits
from glance_ext.testing import crash
from glance_ext.testing import qemu_procs

BUSY = "import time\nend = time.process_time() + 0.3\n" \
       "while time.process_time() < end:\n    pass\n"


def _wait_zombie(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
            return
        time.sleep(0.01)
    raise AssertionError("child %d did not exit" % pid)


def test_cpu_time_of_an_exited_child_is_read_and_it_stays_unreaped():
    child = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        assert exits.cpu_seconds_if_exited(child.pid) is None  # running
        _wait_zombie(child.pid)
        used = exits.cpu_seconds_if_exited(child.pid)
        assert used is not None and 0.25 <= used < 30
        # Still a zombie: the caller reaps it and gets its status.
        assert os.waitpid(child.pid, 0) == (child.pid, 0)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_cpu_time_of_a_reaped_or_foreign_pid_is_none():
    child = subprocess.Popen(["true"])
    child.wait()
    assert exits.cpu_seconds_if_exited(child.pid) is None
    assert exits.cpu_seconds_if_exited(1) is None  # not our child


def test_a_zombie_is_not_a_live_member_of_its_group():
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert crash.live_members(child.pid) == [child.pid]
        assert qemu_procs.parent_pid(child.pid) == os.getpid()
        os.kill(child.pid, signal.SIGKILL)
        _wait_zombie(child.pid)
        assert crash.live_members(child.pid) == []
    finally:
        child.kill()
        child.wait()
    assert qemu_procs.parent_pid(child.pid) is None
