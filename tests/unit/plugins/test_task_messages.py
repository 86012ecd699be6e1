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

"""The task message writer and Glance's own saves never overlap.

The repository here is a stand-in for Glance's TaskRepo (a unit test has no
Glance database), but its save is the real SQLite transaction oslo.db runs:
BEGIN (deferred), read the row, update it, COMMIT, on a file database with a
60 s busy timeout, one connection per thread. Two such transactions that
overlap fail with "database is locked" without waiting; that is what failed
streamed imports in CI. The same happens when the other transaction is in
another process (Glance's GET .../tasks writes: a uWSGI deployment test
failed that way), which the lock cannot reach: the save is retried.
"""

import sqlite3
import threading
import types

import pytest
import sqlalchemy.exc

from glance_ext.plugins import task_messages

ROUNDS = 150


class SqliteTaskRepo:
    def __init__(self, path):
        self.path = path
        self.local = threading.local()
        with self._connection() as db:
            db.execute("CREATE TABLE tasks (id TEXT PRIMARY KEY, "
                       "message TEXT, updated INTEGER)")
            db.execute("INSERT INTO tasks VALUES ('t1', '', 0)")

    def _connection(self):
        if not hasattr(self.local, "db"):
            self.local.db = sqlite3.connect(self.path, timeout=60,
                                            isolation_level=None)
        return self.local.db

    def get(self, task_id):
        row = self._connection().execute(
            "SELECT message FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return types.SimpleNamespace(task_id=task_id, status="processing",
                                     message=row[0])

    def save(self, task):
        db = self._connection()
        db.execute("BEGIN")
        try:
            db.execute("SELECT updated FROM tasks WHERE id = ?",
                       (task.task_id,)).fetchone()
            db.execute("UPDATE tasks SET message = ?, updated = updated + 1 "
                       "WHERE id = ?", (task.message, task.task_id))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def test_saves_of_one_flow_are_serialised(tmp_path):
    repo = SqliteTaskRepo(str(tmp_path / "glance.sqlite"))
    messages = task_messages.TaskMessages(repo, "t1")
    errors = []
    start = threading.Barrier(2)

    def glance_status_callback():
        start.wait()
        try:
            for n in range(ROUNDS):
                task = repo.get("t1")
                task.message = "Copied %d MiB" % n
                repo.save(task)
        except sqlite3.OperationalError as exc:
            errors.append(exc)

    glance = threading.Thread(target=glance_status_callback)
    glance.start()
    start.wait()
    written = sum(messages.set("glance_ext_convert: %d%%" % n)
                  for n in range(ROUNDS))
    glance.join()
    assert errors == []
    assert written == ROUNDS
    updated = sqlite3.connect(repo.path).execute(
        "SELECT updated FROM tasks").fetchone()[0]
    assert updated == 2 * ROUNDS


def test_the_repository_is_wrapped_once(tmp_path):
    repo = SqliteTaskRepo(str(tmp_path / "glance.sqlite"))
    task_messages.TaskMessages(repo, "t1")
    wrapped = repo.save
    task_messages.TaskMessages(repo, "t1")
    assert repo.save is wrapped
    task_messages.serialise_saves(None)


def test_a_save_is_retried_while_another_connection_writes(tmp_path):
    """Another connection (Glance's GET /v2/images/{id}/tasks in another
    uWSGI worker soft-deletes expired tasks in a write transaction) holds
    SQLite's write lock. A save that has read the task fails at once
    without the wrapper; with it, the save waits for the lock to go."""
    repo = SqliteTaskRepo(str(tmp_path / "glance.sqlite"))
    poll = sqlite3.connect(repo.path, isolation_level=None,
                           check_same_thread=False)
    poll.execute("BEGIN IMMEDIATE")
    task = repo.get("t1")
    task.message = "Copied 16 MiB"
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        repo.save(task)

    attempts = []
    plain = repo.save

    def counted(task):
        attempts.append(task.message)
        return plain(task)

    repo.save = counted
    task_messages.TaskMessages(repo, "t1")
    done = threading.Timer(0.3, poll.execute, ("COMMIT",))
    done.start()
    repo.save(task)
    done.join()
    assert len(attempts) > 1
    assert sqlite3.connect(repo.path).execute(
        "SELECT message, updated FROM tasks").fetchone() == (
            "Copied 16 MiB", 1)


def test_other_errors_are_not_retried(tmp_path):
    repo = SqliteTaskRepo(str(tmp_path / "glance.sqlite"))
    attempts = []

    def broken(task):
        attempts.append(task)
        raise sqlite3.OperationalError("no such table: tasks")

    repo.save = broken
    task_messages.TaskMessages(repo, "t1")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        repo.save(types.SimpleNamespace(task_id="t1", message=""))
    assert len(attempts) == 1


def test_the_lock_error_is_recognised_as_sqlalchemy_raises_it():
    locked = sqlite3.OperationalError("database is locked")
    wrapped = sqlalchemy.exc.OperationalError(
        "UPDATE tasks SET updated_at=? WHERE tasks.id = ?", ("now", "t1"),
        locked)
    assert task_messages.sqlite_locked(wrapped)
    assert task_messages.sqlite_locked(locked)
    assert not task_messages.sqlite_locked(sqlalchemy.exc.OperationalError(
        "SELECT 1", (), sqlite3.OperationalError("disk I/O error")))
    assert not task_messages.sqlite_locked(ValueError("database is locked"))
