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

"""Writing an import task's message while a plugin works.

Glance itself only writes "Copied N MiB" during the store copy; during a
long decompression or conversion ``glance image-tasks`` shows nothing. The
message is saved through the flow's ``task_repo`` exactly as Glance's
``_ImportToStore`` does. Each save also bumps the task's ``updated_at``,
which keeps Glance's 60-minute import-lock expiry from treating a long
conversion as dead. A failure to save is logged, never fatal.

The streaming conversion writes its progress from its own thread while
Glance's ``_ImportToStore`` writes "Copied N MiB" (every 60 s, and twice as
the data ends) through the same ``task_repo``. On SQLite, two such
transactions (each reads the task, then updates it) that overlap make one of
them fail at once with "database is locked": the busy timeout does not
apply, SQLite's deadlock rule answers without waiting. Glance does not retry
that save, so the import failed. Every save through the flow's
``task_repo`` is therefore serialised by one lock per repository object,
Glance's own included (it holds the same object: the plugins get the flow's
kwargs). On PostgreSQL the lock costs nothing that matters: the writes of
one import are a few per minute.

The same rule fires across processes, where no lock of ours reaches:
Glance's ``GET /v2/images/{id}/tasks`` (``glance image-tasks``, or a
client waiting for the import) soft-deletes expired tasks in a write
transaction, so a poll served by another uWSGI worker or thread can take
SQLite's write lock between a save's read and its update, and the save
fails at once. Each save is therefore also retried on that error, a few
times over about 4.5 s (oslo.db's ``wrap_db_retry``): the failed
transaction was rolled back, so a retry is the same save again. Other
errors are not retried.
"""

import sqlite3
import threading
from typing import Any, Optional

from glance.common.scripts import utils as script_utils
from oslo_db import api as db_api
from oslo_log import log as logging

LOG = logging.getLogger(__name__)


_SERIALISED = "_glance_ext_save_lock"
_INSTALL_LOCK = threading.Lock()


def sqlite_locked(exc: BaseException) -> bool:
    """SQLite's "database is locked", raw or wrapped by SQLAlchemy (whose
    ``OperationalError`` keeps the driver's error as ``orig``); oslo.db
    does not translate it, so it is matched here."""
    orig = getattr(exc, "orig", None) or exc
    return (isinstance(orig, sqlite3.OperationalError)
            and "database is locked" in str(orig))


# 0.05, 0.1, 0.2, 0.4, 0.8, then 1 s: about 4.5 s in all, longer than any
# of Glance's own write transactions on a task or an image.
_retry_when_locked = db_api.wrap_db_retry(
    max_retries=8, retry_interval=0.05, inc_retry_interval=True,
    max_retry_interval=1, exception_checker=sqlite_locked)


def serialise_saves(task_repo: Any) -> None:
    """Make every ``task_repo.save`` of this flow take one lock, and retry
    it on SQLite's "database is locked" (see the module docstring for
    why). Idempotent: each plugin of the flow calls it and the repository
    is wrapped once."""
    if task_repo is None:
        return
    with _INSTALL_LOCK:
        if getattr(task_repo, _SERIALISED, None) is not None:
            return
        lock = threading.RLock()
        save = _retry_when_locked(task_repo.save)

        def locked_save(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return save(*args, **kwargs)

        # The instance attribute shadows the class's method for this flow's
        # repository only; Glance's code calls it as before.
        task_repo.save = locked_save
        setattr(task_repo, _SERIALISED, lock)


class TaskMessages:
    def __init__(self, task_repo: Any, task_id: Optional[str]) -> None:
        serialise_saves(task_repo)
        self.task_repo = task_repo
        self.task_id = task_id

    def set(self, text: str) -> bool:
        if self.task_repo is None or not self.task_id:
            return False
        try:
            task = script_utils.get_task(self.task_repo, self.task_id)
            if task is None or task.status != "processing":
                return False
            task.message = text[:1024]
            self.task_repo.save(task)
            return True
        except Exception as exc:  # a message is never worth an import
            LOG.warning("Could not update message of task %s: %s",
                        self.task_id, exc)
            return False
