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

"""The import journal tells live imports from interrupted ones, and the
recovery's decision follows from the entry and the image as it is now."""

import json
import os
import subprocess
import sys
import time

import pytest

from glance_ext.plugins import journal as journal_mod
from glance_ext.plugins import recovery
from glance_ext.plugins.journal import Entry, Owner, Step
from glance_ext.plugins.recovery import Outcome


def _entry(**kw):
    values = dict(image_id="img", task_id="task", method="glance-direct",
                  stores=["fs"], staged_path="/staging/img",
                  staged_size=100, owner=Owner.this_process())
    values.update(kw)
    return Entry(**values)


def _dead_owner():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    owner = Owner.this_process()
    owner.pid = pid                      # a process that has ended
    return owner


def test_entry_round_trips_typed(tmp_path):
    j = journal_mod.Journal(str(tmp_path))
    entry = _entry(step=Step.CONVERT, done=[Step.VALIDATE],
                   files=["/staging/img.glance_ext_convert.raw"])
    entry.remember({"disk_format": "qcow2"}, {"glance_ext_x": None})
    entry.remember({"disk_format": "raw", "size": 5}, {"glance_ext_x": "v"})
    j.write(entry)
    (back,) = j.entries()
    assert back == entry
    assert back.step is Step.CONVERT and back.done == [Step.VALIDATE]
    # The first record of a key is the value before any plugin changed it.
    assert back.original == {"disk_format": "qcow2", "size": 5}
    assert back.properties == {"glance_ext_x": None}


def test_own_entry_is_alive_until_removed(tmp_path):
    j = journal_mod.Journal(str(tmp_path))
    j.write(_entry())
    assert j.interrupted() == []
    assert j.old(3600) == []
    j.remove("img", "task")
    assert os.listdir(str(tmp_path)) == []


def test_dead_process_reused_pid_or_reboot_is_interrupted(tmp_path):
    j = journal_mod.Journal(str(tmp_path))
    j.write(_entry(owner=_dead_owner()))
    (found,) = j.interrupted()
    assert found.image_id == "img"
    other = Owner.this_process()
    other.pid_start = "1"                # same pid, another process
    j.write(_entry(owner=other))
    assert len(j.interrupted()) == 1
    rebooted = Owner.this_process()
    rebooted.boot_id = "another-boot"
    j.write(_entry(owner=rebooted))
    # Written before this machine booted (a real reboot; written since,
    # it would be another machine's: see test_an_entry_of_another_...).
    _set_updated(str(tmp_path), "img", journal_mod.boot_time() - 10)
    assert len(j.interrupted()) == 1


def _set_updated(directory, image_id, when):
    path = os.path.join(directory, "%s.task.json" % image_id)
    with open(path) as fh:
        data = json.load(fh)
    data["updated"] = when
    with open(path, "w") as fh:
        json.dump(data, fh)


def test_old_entries_of_live_processes(tmp_path):
    j = journal_mod.Journal(str(tmp_path))
    entry = _entry()
    j.write(entry)
    path = os.path.join(str(tmp_path), "img.task.json")
    old = time.time() - 7200
    import json
    with open(path) as fh:
        data = json.load(fh)
    data["updated"] = old
    with open(path, "w") as fh:
        json.dump(data, fh)
    assert [e.image_id for e in j.old(3600)] == ["img"]
    assert j.interrupted() == []


def test_unreadable_entry_is_skipped(tmp_path):
    (tmp_path / "x.y.json").write_text("{not json")
    (tmp_path / "y.z.json").write_text('{"image_id": "only"}')
    assert journal_mod.Journal(str(tmp_path)).interrupted() == []


def _hold_flock(path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl,os,sys,time;fd=os.open(sys.argv[1],os.O_RDWR|"
         "os.O_CREAT);fcntl.flock(fd,fcntl.LOCK_EX);print('held',flush="
         "True);time.sleep(30)", path],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_one_worker_process_recovers_at_a_time(tmp_path):
    # Every worker loads the start-up filter; the node's lock lets one of
    # them recover while the others skip (a second process holds it here).
    holder = _hold_flock(str(tmp_path / ".recovery-node-a.lock"))
    try:
        with recovery._host_lock(str(tmp_path), "node-a") as held:
            assert held is False
        # Another node recovering in a shared journal does not make this
        # one skip its own recovery.
        with recovery._host_lock(str(tmp_path), "node-b") as held:
            assert held is True
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with recovery._host_lock(str(tmp_path), "node-a") as held:
        assert held is True
    # No journal directory yet: nothing to lock, nothing to recover.
    with recovery._host_lock(str(tmp_path / "absent"), "node-a") as held:
        assert held is True


def test_entries_of_other_nodes_are_never_judged(tmp_path):
    # A journal shared by two nodes (shared staging). Node b's process
    # ids mean nothing on node a: its entries, alive or dead by a's view,
    # are never listed as interrupted or old on a, only on b.
    a = journal_mod.Journal(str(tmp_path), host="node-a")
    b = journal_mod.Journal(str(tmp_path), host="node-b")
    dead_on_b = _dead_owner()
    dead_on_b.host = "node-b"
    a.write(_entry(image_id="of-b", owner=dead_on_b))
    mine = _dead_owner()
    mine.host = "node-a"
    a.write(_entry(image_id="of-a", owner=mine))
    assert [e.image_id for e in a.interrupted()] == ["of-a"]
    assert [e.image_id for e in a.foreign()] == ["of-b"]
    assert [e.image_id for e in b.interrupted()] == ["of-b"]
    stale = Owner.this_process("node-b")
    a.write(_entry(image_id="live-b", owner=stale))
    os.utime(os.path.join(str(tmp_path), "live-b.task.json"))
    assert "live-b" not in [e.image_id for e in a.old(-1)]
    assert "live-b" in [e.image_id for e in b.old(-1)]


def test_an_entry_of_another_machine_with_this_name_is_left_alone(
        tmp_path):
    # Two machines with one [glance_ext] host on one shared journal: an
    # entry of that name written under another boot id after this machine
    # booted is not from an earlier boot here; judging it by this
    # machine's process table would revert a running import.
    journal = journal_mod.Journal(str(tmp_path), host="node-a")
    other = _dead_owner()
    other.host = "node-a"
    other.boot_id = "boot-of-another-machine"
    journal.write(_entry(image_id="clash", owner=other))
    assert [e.image_id for e in journal.clashing()] == ["clash"]
    assert journal.interrupted() == []
    # Written before this machine booted: an entry of this node from
    # before a reboot, which is interrupted.
    _set_updated(str(tmp_path), "clash", journal_mod.boot_time() - 10)
    assert journal.clashing() == []
    assert [e.image_id for e in journal.interrupted()] == ["clash"]


def test_owner_names_its_node():
    assert Owner.this_process("glance-2").host == "glance-2"
    assert Owner.this_process().host == journal_mod.socket.gethostname()


@pytest.mark.parametrize("status,holder,length,method,outcome", [
    # The import finished: nothing to undo; with the lock free our
    # leftovers can go.
    ("active", None, None, "glance-direct", Outcome.CLEAN_FINISHED),
    # Reverted already, or another task holds the image: hands off.
    ("queued", None, 100, "glance-direct", Outcome.FORGET),
    ("importing", "other-task", 100, "glance-direct", Outcome.FORGET),
    ("active", "other-task", None, "glance-direct", Outcome.FORGET),
    # The dead task holds the lock: the complete upload is kept.
    ("importing", "task", 100, "glance-direct", Outcome.RETRY_UPLOAD),
    # A staged file cut short, or gone: stage again.
    ("importing", "task", 99, "glance-direct", Outcome.REQUEUE),
    ("importing", "task", None, "glance-direct", Outcome.REQUEUE),
    # web-download fetches its data again.
    ("importing", "task", 100, "web-download", Outcome.REQUEUE),
    # Active after its first store: keep it, fail the others.
    ("active", "task", None, "glance-direct", Outcome.KEEP_ACTIVE),
])
def test_decide(status, holder, length, method, outcome):
    entry = _entry(method=method, step=Step.UPLOAD)
    decision = recovery.decide(entry, status, holder, length)
    assert decision.outcome is outcome
    if outcome in (Outcome.RETRY_UPLOAD, Outcome.REQUEUE,
                   Outcome.KEEP_ACTIVE):
        assert "interrupted because glance-api stopped" in decision.message
        assert "the upload to the store" in decision.message
    if outcome is Outcome.RETRY_UPLOAD:
        assert "glance image-import img" in decision.message


def test_no_recorded_size_is_not_a_complete_upload():
    entry = _entry(staged_size=None, step=Step.VALIDATE)
    decision = recovery.decide(entry, "importing", "task", 0)
    assert decision.outcome is Outcome.REQUEUE
    assert "during validation (glance_ext_validate)" in decision.message
    assert "stage the image data again" in decision.message


def test_a_finished_step_is_named_as_such():
    entry = _entry(step=Step.CONVERT, done=[Step.CONVERT])
    decision = recovery.decide(entry, "importing", "task", 100)
    assert "after conversion (glance_ext_convert) had finished" in \
        decision.message
