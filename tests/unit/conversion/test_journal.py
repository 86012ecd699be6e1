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

"""The in-flight journal tells live conversions from interrupted ones."""

import json
import os
import time

from glance_ext.conversion import journal as journal_mod


def test_own_entry_is_alive_until_removed(tmp_path):
    j = journal_mod.Journal(str(tmp_path))
    j.record("img", "task", ["fs"], ["/s/img"])
    assert j.interrupted() == []
    assert j.old(3600) == []
    j.remove("img", "task")
    assert os.listdir(str(tmp_path)) == []


def test_dead_process_is_interrupted(tmp_path):
    j = journal_mod.Journal(str(tmp_path))
    path = j.record("img", "task", ["fs"], ["/s/img.x", "/s/img"],
                    original={"disk_format": "qcow2"})
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    with open(path) as fh:
        entry = json.load(fh)
    entry["pid"] = pid                       # a process that has ended
    with open(path, "w") as fh:
        json.dump(entry, fh)
    (found,) = j.interrupted()
    assert found["image_id"] == "img"
    assert found["original"] == {"disk_format": "qcow2"}


def test_reused_pid_or_reboot_is_interrupted(tmp_path):
    j = journal_mod.Journal(str(tmp_path))
    path = j.record("img", "task", [], [])
    with open(path) as fh:
        entry = json.load(fh)
    entry["pid_start"] = "1"                 # same pid, other process
    with open(path, "w") as fh:
        json.dump(entry, fh)
    assert len(j.interrupted()) == 1
    entry["pid_start"] = journal_mod._start_time(os.getpid())
    entry["boot_id"] = "another-boot"
    with open(path, "w") as fh:
        json.dump(entry, fh)
    assert len(j.interrupted()) == 1


def test_old_entries_of_live_processes(tmp_path):
    j = journal_mod.Journal(str(tmp_path))
    path = j.record("img", "task", [], [])
    with open(path) as fh:
        entry = json.load(fh)
    entry["started"] = time.time() - 7200
    with open(path, "w") as fh:
        json.dump(entry, fh)
    assert [e["image_id"] for e in j.old(3600)] == ["img"]
    assert j.interrupted() == []


def test_unreadable_entry_is_skipped(tmp_path):
    (tmp_path / "x.y.json").write_text("{not json")
    assert journal_mod.Journal(str(tmp_path)).interrupted() == []


def test_one_worker_process_recovers_at_a_time(tmp_path):
    # Every worker loads the start-up filter; the host lock lets one of
    # them recover while the others skip (a second process holds it here).
    import subprocess
    import sys

    from glance_ext.conversion import recovery
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl,os,sys,time;fd=os.open(sys.argv[1],os.O_RDWR|"
         "os.O_CREAT);fcntl.flock(fd,fcntl.LOCK_EX);print('held',flush="
         "True);time.sleep(30)", str(tmp_path / ".recovery.lock")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with recovery._host_lock(str(tmp_path)) as held:
            assert held is False
    finally:
        holder.kill()
        holder.wait()
    with recovery._host_lock(str(tmp_path)) as held:
        assert held is True
    # No journal directory yet: nothing to lock, nothing to recover.
    with recovery._host_lock(str(tmp_path / "absent")) as held:
        assert held is True
