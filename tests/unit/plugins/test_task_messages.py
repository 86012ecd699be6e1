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
streamed imports in CI.
"""

import sqlite3
import threading
import types

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
