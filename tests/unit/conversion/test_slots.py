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

"""The host-wide conversion limit holds across threads and processes."""

import subprocess
import sys
import threading
import time

import pytest

from glance_ext.conversion import slots


def test_threads_of_one_process_exclude_each_other(tmp_path):
    # flock is per open file description: two threads must not share a
    # slot (POSIX lockf would let them).
    host = slots.HostSlots(str(tmp_path), 2)
    a = host.try_acquire()
    b = host.try_acquire()
    assert a is not None and b is not None and a.index != b.index
    assert host.try_acquire() is None
    assert host.busy() == 2
    a.release()
    c = host.try_acquire()
    assert c is not None and c.index == a.index
    b.release()
    c.release()
    assert host.busy() == 0


def test_concurrent_threads_never_exceed_limit(tmp_path):
    host = slots.HostSlots(str(tmp_path), 2, poll_seconds=0.01)
    running = []
    peak = []
    lock = threading.Lock()

    def work():
        with host.acquire(timeout=30):
            with lock:
                running.append(1)
                peak.append(len(running))
            time.sleep(0.05)
            with lock:
                running.pop()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(peak) == 8 and max(peak) == 2


def test_other_process_holds_slot_and_death_frees_it(tmp_path):
    # A separate interpreter (no fork of this threaded process, no shared
    # multiprocessing locks that a SIGKILL could leave held).
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from glance_ext.conversion import slots\n"
         "s = slots.HostSlots(sys.argv[1], 1).try_acquire()\n"
         "print('held' if s else 'none', flush=True)\n"
         "time.sleep(60)\n", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        host = slots.HostSlots(str(tmp_path), 1)
        assert host.try_acquire() is None
        holder.kill()                 # a crashed worker leaks nothing
        holder.wait(10)
        slot = host.try_acquire()
        assert slot is not None
        slot.release()
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()


def test_timeout_says_host_is_busy(tmp_path):
    host = slots.HostSlots(str(tmp_path), 1, poll_seconds=0.01)
    held = host.try_acquire()
    waits = []
    with pytest.raises(slots.SlotTimeout) as err:
        host.acquire(timeout=0.1, on_wait=waits.append)
    assert "busy" in str(err.value) and "max_concurrent" in str(err.value)
    assert waits
    held.release()
