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

"""Reverting conversions that a Glance restart interrupted.

Runs inside glance-api (from the convert plugin's ``get_flow``, i.e. at the
next import on the host after a restart), with Glance's own admin-context
repositories, and does what the plugin's revert would have done: image
back to ``queued``, its stores from importing to failed, the dead task
marked failed with a message saying what happened, the import lock
dropped, and our files plus the staged data deleted. It only touches an
image whose import lock is still held by the dead task: if anyone else
has taken the image over since, only the journal entry goes.
"""

import threading
from typing import Dict

from oslo_log import log as logging

from glance_ext.conversion import journal as journal_mod

LOG = logging.getLogger(__name__)

MESSAGE = ("glance_ext_convert: the conversion was interrupted because "
           "glance-api stopped (restart or crash); stage the image data and "
           "import it again")

_RUNNING = threading.Lock()


def recover(journal: journal_mod.Journal) -> int:
    """Revert every interrupted conversion in ``journal``; never raises.
    Returns how many images were reverted."""
    if not _RUNNING.acquire(blocking=False):
        return 0       # another thread of this worker is already at it
    try:
        _forget_finished(journal)
        entries = journal.interrupted()
        if not entries:
            return 0
        reverted = 0
        for entry in entries:
            try:
                if _revert(entry):
                    reverted += 1
            except Exception:
                LOG.exception("Could not recover interrupted conversion of "
                              "image %s", entry.get("image_id"))
                continue
            journal.remove(entry["image_id"], entry["task_id"])
        return reverted
    finally:
        _RUNNING.release()


# Entries of live processes are checked against the task after this long.
FINISHED_CHECK_AGE = 600


def _forget_finished(journal: journal_mod.Journal) -> None:
    from glance import context as glance_context
    from glance import gateway as glance_gateway

    old = journal.old(FINISHED_CHECK_AGE)
    if not old:
        return
    task_repo = glance_gateway.Gateway().get_task_repo(
        glance_context.get_admin_context())
    for entry in old:
        try:
            status = task_repo.get(entry["task_id"]).status
        except Exception:
            status = "missing"
        if status not in ("pending", "processing"):
            journal.remove(entry["image_id"], entry["task_id"])


def _revert(entry: Dict) -> bool:
    from glance.async_.flows import api_image_import
    from glance.common import exception
    from glance import context as glance_context
    from glance import gateway as glance_gateway

    from glance_ext.plugins import base

    image_id, task_id = entry["image_id"], entry["task_id"]
    stores = [s for s in entry.get("stores") or [] if s]
    ctx = glance_context.get_admin_context()
    gw = glance_gateway.Gateway()
    image_repo = gw.get_repo(ctx)
    task_repo = gw.get_task_repo(ctx)
    wrapper = api_image_import.ImportActionWrapper(image_repo, image_id,
                                                   task_id)
    original = entry.get("original") or {}
    try:
        with wrapper as action:
            if action.image_status == "active":
                return False        # the import finished before the stop
            base.restore_and_requeue(
                action, stores,
                {k: original[k] for k in ("disk_format", "container_format",
                                          "size")} if original else None,
                original.get("properties", []))
    except exception.NotFound:
        LOG.info("Interrupted conversion of image %s: image is gone",
                 image_id)
        _delete_files(entry)
        return False
    except exception.TaskAbortedError:
        LOG.info("Interrupted conversion of image %s: another task holds "
                 "the image now; leaving it alone", image_id)
        return False
    try:
        task = task_repo.get(task_id)
        if task.status in ("pending", "processing"):
            task.fail(MESSAGE)
            task_repo.save(task)
    except Exception as exc:
        LOG.warning("Could not mark task %s failed: %s", task_id, exc)
    try:
        wrapper.drop_lock_for_task()
    except exception.NotFound:
        pass
    _delete_files(entry)
    LOG.warning("Reverted image %s: its conversion (task %s) was interrupted "
                "by a glance-api restart", image_id, task_id)
    return True


def _delete_files(entry: Dict) -> None:
    from glance_ext.plugins import base
    base.delete_files(entry.get("files") or [])
