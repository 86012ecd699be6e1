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

Runs inside glance-api, with Glance's own admin-context repositories: when
a worker loads its paste pipeline (``glance_ext.middleware.startup_recovery``,
so right after a restart, before anyone has to import again) and, for hosts
without that filter, from the convert plugin's ``get_flow`` at the next
import. It does what the plugin's revert would have done: image
back to ``queued``, its stores from importing to failed, the dead task
marked failed with a message saying what happened, the import lock
dropped, and our files plus the staged data deleted. It only touches an
image whose import lock is still held by the dead task: if anyone else
has taken the image over since, only the journal entry goes.
"""

import contextlib
import fcntl
import os
import threading
from typing import Dict, Iterator

from oslo_config import cfg
from oslo_log import log as logging

from glance_ext.conversion import journal as journal_mod
from glance_ext.conversion import options
from glance_ext.conversion.settings import Settings

LOG = logging.getLogger(__name__)

MESSAGE = ("glance_ext_convert: the conversion was interrupted because "
           "glance-api stopped (restart or crash); stage the image data and "
           "import it again")

_RUNNING = threading.Lock()


def journal_for(settings: Settings, staging_dir: str
                ) -> journal_mod.Journal:
    """The journal of this host's conversions (next to the slot locks)."""
    return journal_mod.Journal(os.path.join(settings.slot_dir(staging_dir),
                                            "inflight"))


def recover_on_this_host(conf: cfg.ConfigOpts, when: str) -> int:
    """Recover with Glance's configuration; never raises (a failed
    recovery must not keep glance-api from starting or an import from
    running). ``when`` names the trigger for the log."""
    from glance import housekeeping

    try:
        options.register_opts(conf)    # the plugin may not be loaded yet
        count = recover(journal_for(Settings.from_conf(conf),
                                    housekeeping.staging_store_path()))
    except Exception as exc:
        LOG.warning("Recovery of interrupted conversions (%s) skipped: %s",
                    when, exc)
        return 0
    if count:
        LOG.warning("Reverted %d conversion(s) interrupted by a glance-api "
                    "stop (%s)", count, when)
    return count


def recover(journal: journal_mod.Journal) -> int:
    """Revert every interrupted conversion in ``journal``; never raises.
    Returns how many images were reverted."""
    if not _RUNNING.acquire(blocking=False):
        return 0       # another thread of this worker is already at it
    try:
        with _host_lock(journal.directory) as held:
            if not held:
                return 0   # another worker process of the host is at it
            return _recover(journal)
    finally:
        _RUNNING.release()


@contextlib.contextmanager
def _host_lock(directory: str) -> Iterator[bool]:
    """Non-blocking flock across the worker processes of a host (each
    worker loads the pipeline at start; one of them recovers). Yields
    whether this process holds it."""
    if not os.path.isdir(directory):
        yield True               # no journal yet: nothing to recover
        return
    fd = os.open(os.path.join(directory, ".recovery.lock"),
                 os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)             # closing releases the lock


def _recover(journal: journal_mod.Journal) -> int:
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
        image = image_repo.get(image_id)
    except exception.NotFound:
        LOG.info("Interrupted conversion of image %s: image is gone",
                 image_id)
        _delete_files(entry)
        return False
    holder = image.extra_properties.get("os_glance_import_task")
    if holder != task_id or image.status == "active":
        # The import finished (active), was already reverted, or another
        # task holds the image now: nothing was interrupted that we must
        # undo, and the files may be someone else's now. (Entering the
        # wrapper would log Glance's "other task holds the lock" ERROR.)
        LOG.debug("Conversion journal entry of image %s (task %s): the "
                  "import is over (status %s, lock held by %s); forgotten",
                  image_id, task_id, image.status, holder)
        return False
    try:
        with wrapper as action:
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
        elif task.status == "failure" and MESSAGE not in (task.message
                                                          or ""):
            # A graceful stop: the exiting interpreter shut taskflow's
            # pools down, the flow failed without reverting and Glance
            # wrote only "Internal Error". Say what happened.
            task.message = "%s (Glance reported: %s)" % (MESSAGE,
                                                         task.message)
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
