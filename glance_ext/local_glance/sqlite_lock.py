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

"""SQLite transactions that queue instead of failing, for local-glance.

oslo.db opens every SQLite transaction with a deferred ``BEGIN``. A Glance
save reads its row, then writes it; when two such transactions overlap (the
import thread's task and image saves and an API request's, one import's
flow thread and the request that started it), SQLite's deadlock rule fails
one of them at once with "database is locked": the busy timeout is not
consulted. Glance retries some of its saves, not all, and an import that
hits one of the others fails. That is Glance on SQLite under load, not a
fault of the plugins, and production Glance runs on MySQL or PostgreSQL
(``--db postgresql`` here). For the demo and the SQLite tests, every
transaction begins ``BEGIN IMMEDIATE`` instead: it takes the write lock
first, so transactions queue on the busy timeout (60 s, see
``service.py``) instead of failing. Nothing else in Glance changes.
"""

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

# oslo.db's own "begin" listener emits BEGIN unless this key is set; it
# removes the key on commit and rollback.
_OSLO_DB_MARK = "in_transaction"


def _begin_immediate(conn: sqlalchemy.engine.Connection) -> None:
    if conn.dialect.name != "sqlite" or _OSLO_DB_MARK in conn.info:
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE")
    conn.info[_OSLO_DB_MARK] = True


def install() -> None:
    """Make every SQLite transaction of this process begin IMMEDIATE.
    Listening on the Engine class puts this before the listener oslo.db
    adds to each engine it creates. Idempotent."""
    if not event.contains(Engine, "begin", _begin_immediate):
        event.listen(Engine, "begin", _begin_immediate)
