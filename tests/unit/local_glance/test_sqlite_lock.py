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

"""local-glance's SQLite transactions take the write lock when they begin.

The engine is made by oslo.db exactly as Glance makes it (its own "begin"
listener included), on a SQLite file; a second, plain sqlite3 connection
asks for the write lock without waiting to see who holds it.
"""

import sqlite3
import threading

from oslo_db.sqlalchemy import engines
import pytest
import sqlalchemy

from glance_ext.local_glance import sqlite_lock


@pytest.fixture
def engine(tmp_path):
    sqlite_lock.install()
    url = "sqlite:///%s?timeout=60" % (tmp_path / "glance.sqlite")
    engine = engines.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE tasks (id TEXT, n INTEGER)")
        conn.exec_driver_sql("INSERT INTO tasks VALUES ('t1', 0)")
    yield engine
    engine.dispose()


def _write_lock_free(engine):
    other = sqlite3.connect(engine.url.database, timeout=0,
                            isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        other.close()
    return True


def test_a_reading_transaction_already_holds_the_write_lock(engine):
    with engine.begin() as conn:
        conn.exec_driver_sql("SELECT n FROM tasks").fetchall()
        assert not _write_lock_free(engine)
    assert _write_lock_free(engine)


def test_read_then_write_transactions_queue_instead_of_failing(engine):
    errors = []
    start = threading.Barrier(4)

    def saves():
        start.wait()
        try:
            for _ in range(50):
                with engine.begin() as conn:
                    conn.exec_driver_sql(
                        "SELECT n FROM tasks WHERE id = 't1'").fetchall()
                    conn.exec_driver_sql(
                        "UPDATE tasks SET n = n + 1 WHERE id = 't1'")
        except sqlalchemy.exc.OperationalError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=saves) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM tasks").scalar() == 200


def test_install_is_idempotent():
    sqlite_lock.install()
    sqlite_lock.install()
    assert sqlalchemy.event.contains(sqlalchemy.engine.Engine, "begin",
                                     sqlite_lock._begin_immediate)
