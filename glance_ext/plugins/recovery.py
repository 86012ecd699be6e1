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

"""Reverting imports that a glance-api stop or crash interrupted.

Runs inside glance-api with Glance's own admin-context repositories: when
a worker loads its paste pipeline (``glance_ext.middleware.
startup_recovery``, so right after a restart, before anyone imports again)
and, for hosts without that filter, from every plugin's ``get_flow``. For
each journal entry (``plugins.journal``) whose process is dead and whose
image is still locked by the dead task, it does what a revert would have
done, and better for the user:

- a glance-direct import whose staged upload is still complete (its
  length is the size Glance recorded when the stage finished) goes back to
  ``uploading`` with the staged data kept: ``glance image-import`` alone
  retries it; our intermediate files are deleted. The image names this
  node again as the one holding the staged data (``os_glance_stage_host``,
  which Glance dropped when the import began), so a retry sent to another
  node of the cloud is proxied here, as Glance does after a stage;
- any other import (web-download, an incomplete or missing upload) goes
  back to ``queued`` with staging cleaned: stage (or download) again;
- an image that became active in some stores keeps them; the stores still
  importing are marked failed;
- what a plugin changed on the image is put back, the stores move from
  importing to failed, a half-written object in a store is deleted
  (``store_cleanup``), the dead task is marked failed with a message that
  says which step was interrupted and what to do, the lock is dropped.

Nothing here touches an import whose process is alive, an image whose
lock another task holds, or an entry of another node (a journal shared by
several nodes: each node recovers its own, see ``journal``).
"""

import contextlib
import dataclasses
import enum
import fcntl
import os
import threading
from typing import Any, Iterator, Optional

from oslo_config import cfg
from oslo_log import log as logging

from glance_ext.common.names import file_safe
from glance_ext.plugins import base
from glance_ext.plugins import journal as journal_mod
from glance_ext.plugins import options
from glance_ext.plugins import store_cleanup
from glance_ext.plugins.journal import Entry, Step

LOG = logging.getLogger(__name__)

INTERRUPTED = ("glance_ext: the import was interrupted because glance-api "
               "stopped (restart or crash) %s")
# Entries of live processes not updated for this long are checked against
# their task (an end-of-import hook that never ran).
FINISHED_CHECK_AGE = 600

_RUNNING = threading.Lock()


class Outcome(str, enum.Enum):
    """What recovery does with one interrupted import."""

    FORGET = "forget"           # over, or someone else's now: entry only
    CLEAN_FINISHED = "finished"  # over, lock free: also our leftovers
    RETRY_UPLOAD = "uploading"  # back to uploading, staged data kept
    REQUEUE = "queued"          # back to queued, staging cleaned
    KEEP_ACTIVE = "active"      # active elsewhere: fail the other stores


@dataclasses.dataclass(frozen=True)
class Decision:
    outcome: Outcome
    message: str = ""


def decide(entry: Entry, status: str, lock_holder: Optional[str],
           staged_length: Optional[int]) -> Decision:
    """What to do with ``entry``, given the image as it is now.

    ``staged_length`` is the size of the staged upload file, None when it
    is gone. Pure: the tests drive it directly.
    """
    if lock_holder != entry.task_id:
        if status == "active" and lock_holder is None:
            return Decision(Outcome.CLEAN_FINISHED)
        return Decision(Outcome.FORGET)
    step = INTERRUPTED % where(entry)
    if status == "active":
        return Decision(Outcome.KEEP_ACTIVE, step + (
            "; the image is active in the stores that finished: copy it "
            "to the others with the copy-image import method"))
    complete = (entry.method == "glance-direct"
                and entry.staged_size is not None
                and staged_length == entry.staged_size)
    if complete:
        return Decision(Outcome.RETRY_UPLOAD, step + (
            "; the staged data is kept: import it again with `glance "
            "image-import %s --import-method glance-direct`"
            % entry.image_id))
    if entry.method == "glance-direct":
        return Decision(Outcome.REQUEUE, step + (
            "; the staged data is incomplete or gone: stage the image data "
            "again and import it"))
    return Decision(Outcome.REQUEUE, step + (
        "; import it again (the data is fetched again)"))


def where(entry: Entry) -> str:
    """"during <step>", or "after <step> had finished" when the process
    died between our steps."""
    if entry.step in entry.done:
        return "after %s had finished" % entry.step.text
    return "during %s" % entry.step.text


def journal_for(conf: cfg.ConfigOpts, staging_dir: str
                ) -> journal_mod.Journal:
    return journal_mod.Journal(options.journal_dir(conf, staging_dir),
                               host=options.host(conf))


def recover_on_this_host(conf: cfg.ConfigOpts, when: str) -> int:
    """Recover with Glance's configuration; never raises (a failed
    recovery must not keep glance-api from starting or an import from
    running). ``when`` names the trigger for the log."""
    from glance import housekeeping

    try:
        count = recover(journal_for(conf, housekeeping.staging_store_path()))
    except Exception as exc:
        LOG.warning("Recovery of interrupted imports (%s) skipped: %s",
                    when, exc)
        return 0
    if count:
        LOG.warning("Reverted %d import(s) interrupted by a glance-api stop "
                    "(%s)", count, when)
    return count


def recover(journal: journal_mod.Journal) -> int:
    """Revert every interrupted import in ``journal``; never raises.
    Returns how many images were reverted."""
    if not _RUNNING.acquire(blocking=False):
        return 0       # another thread of this worker is already at it
    try:
        with _host_lock(journal.directory, journal.host) as held:
            if not held:
                return 0   # another worker process of the host is at it
            return _recover(journal, _Glance())
    finally:
        _RUNNING.release()


@contextlib.contextmanager
def _host_lock(directory: str, host: str) -> Iterator[bool]:
    """Non-blocking flock across the worker processes of a node (each
    worker loads the pipeline at start; one of them recovers). Yields
    whether this process holds it. One lock file per node: in a journal
    shared by several nodes, one node recovering must not make another
    skip its own recovery."""
    if not os.path.isdir(directory):
        yield True               # no journal yet: nothing to recover
        return
    fd = os.open(os.path.join(directory, ".recovery-%s.lock"
                              % file_safe(host)),
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


class _Glance:
    """Glance's repositories with an admin context (imported lazily: this
    module is imported by the plugins, which Glance imports)."""

    def __init__(self) -> None:
        from glance.async_.flows import api_image_import
        from glance.common import exception
        from glance import context as glance_context
        from glance import gateway as glance_gateway

        ctx = glance_context.get_admin_context()
        gw = glance_gateway.Gateway()
        self.image_repo = gw.get_repo(ctx)
        self.task_repo = gw.get_task_repo(ctx)
        self.exception = exception
        self._wrapper = api_image_import.ImportActionWrapper

    def wrapper(self, entry: Entry) -> Any:
        return self._wrapper(self.image_repo, entry.image_id, entry.task_id)


def _recover(journal: journal_mod.Journal, glance: _Glance) -> int:
    for entry in journal.foreign():
        LOG.debug("Journal entry of image %s belongs to node %s (this is "
                  "%s): left to that node's recovery", entry.image_id,
                  entry.owner.host, journal.host)
    for entry in journal.clashing():
        LOG.error("Journal entry of image %s (task %s) names this node (%s) "
                  "but was written on another machine (boot id %s) since "
                  "this one started: two glance-api nodes use [glance_ext] "
                  "host = %s on one shared journal (%s). Not recovering it; "
                  "give every node its own [glance_ext] host",
                  entry.image_id, entry.task_id, journal.host,
                  entry.owner.boot_id, journal.host, journal.directory)
    _forget_finished(journal, glance)
    reverted = 0
    for entry in journal.interrupted():
        try:
            if _revert(entry, glance):
                reverted += 1
        except Exception:
            LOG.exception("Could not recover the interrupted import of "
                          "image %s", entry.image_id)
            continue
        journal.remove(entry.image_id, entry.task_id)
    return reverted


def _forget_finished(journal: journal_mod.Journal, glance: _Glance) -> None:
    for entry in journal.old(FINISHED_CHECK_AGE):
        try:
            status = glance.task_repo.get(entry.task_id).status
        except Exception:
            status = "missing"
        if status not in ("pending", "processing"):
            journal.remove(entry.image_id, entry.task_id)


def _staged_length(entry: Entry) -> Optional[int]:
    try:
        return os.path.getsize(entry.staged_path)
    except OSError:
        return None


def _revert(entry: Entry, glance: _Glance) -> bool:
    exception = glance.exception
    try:
        image = glance.image_repo.get(entry.image_id)
    except exception.NotFound:
        LOG.info("Interrupted import of image %s: the image is gone",
                 entry.image_id)
        base.delete_files(entry.files + [entry.staged_path])
        return False
    decision = decide(entry, image.status,
                      image.extra_properties.get("os_glance_import_task"),
                      _staged_length(entry))
    if decision.outcome is Outcome.FORGET:
        # Reverted already, or another task holds the image now: nothing
        # of ours to undo, and the files may be someone else's. (Taking
        # the lock would log Glance's "other task holds the lock" ERROR.)
        LOG.debug("Journal entry of image %s (task %s): the import is over "
                  "(status %s); forgotten", entry.image_id, entry.task_id,
                  image.status)
        return False
    if decision.outcome is Outcome.CLEAN_FINISHED:
        # The import ended but its process died before its end-of-import
        # clean-up; nobody imports now, so what is left is ours.
        base.delete_files(entry.files + [entry.staged_path])
        return False
    locations = {(loc.get("metadata") or {}).get("store")
                 for loc in image.locations or ()}
    unfinished = [s for s in entry.stores if s and s not in locations]
    # Everything that can take time goes first, so that once the image
    # shows its reverted status, a client may import again at once: the
    # partial store copies and our files, then the image, then the lock,
    # then the task (a client waits for the task, then reads the image).
    notes = []
    for store in unfinished:
        result = store_cleanup.remove_partial(store, entry.image_id)
        if result.unknown:
            LOG.warning("Interrupted import of image %s: %s",
                        entry.image_id, result.unknown)
            notes.append(result.unknown)
    keep = ({entry.staged_path} if decision.outcome is Outcome.RETRY_UPLOAD
            else set())
    base.delete_files([f for f in entry.files + [entry.staged_path]
                       if f not in keep])
    if decision.outcome is Outcome.RETRY_UPLOAD:
        # Before the status: a client that sees "uploading" may import at
        # once, through any node, which must then proxy to this one. (The
        # wrapper below re-reads the image, so this property stays.)
        _record_stage_host(entry, glance)
    with glance.wrapper(entry) as action:
        if decision.outcome is not Outcome.KEEP_ACTIVE:
            _restore(action, entry)
        if unfinished:
            action.remove_importing_stores(unfinished)
            action.add_failed_stores(unfinished)
        if decision.outcome is Outcome.REQUEUE:
            action.set_image_attribute(status="queued")
        elif decision.outcome is Outcome.RETRY_UPLOAD:
            # Glance allows importing -> queued -> uploading only, and
            # "queued" clears the size: record the staged upload's again,
            # as image-stage did.
            action.set_image_attribute(status="queued")
            action.set_image_attribute(status="uploading",
                                       size=entry.staged_size)
    # Glance's image save ignores os_glance_import_task (it is an atomic
    # property), so the lock is dropped by its own call, right after.
    try:
        glance.wrapper(entry).drop_lock_for_task()
    except exception.NotFound:
        pass
    _fail_task(entry, decision.message + "".join("; " + n for n in notes),
               glance)
    LOG.warning("Reverted image %s to %s: its import (task %s) was "
                "interrupted %s by a glance-api stop",
                entry.image_id, decision.outcome.value, entry.task_id,
                where(entry))
    return True


def _record_stage_host(entry: Entry, glance: _Glance) -> None:
    """What Glance's ``image-stage`` records: this node's URL as the one
    with the staged data. Not through the action wrapper, which drops
    ``os_glance`` keys; a failure is logged (the retry then has to reach
    this node by itself)."""
    self_url = getattr(cfg.CONF, "worker_self_reference_url", None) or \
        getattr(cfg.CONF, "public_endpoint", None)
    if not self_url:
        return
    try:
        image = glance.image_repo.get(entry.image_id)
        image.extra_properties["os_glance_stage_host"] = self_url
        glance.image_repo.save(image)
    except Exception as exc:
        LOG.warning("Image %s: could not record %s as its staging node: "
                    "%s", entry.image_id, self_url, exc)


def _restore(action: Any, entry: Entry) -> None:
    """What our plugins changed on the image goes back."""
    attributes = {k: v for k, v in entry.original.items()
                  if k in ("disk_format", "container_format", "size")}
    if attributes:
        action.set_image_attribute(**attributes)
    for key, before in entry.properties.items():
        if before is None:
            action.pop_extra_property(key)
        else:
            action.set_image_extra_properties({key: before})


def _fail_task(entry: Entry, message: str, glance: _Glance) -> None:
    try:
        task = glance.task_repo.get(entry.task_id)
        if task.status in ("pending", "processing"):
            task.fail(message)
            glance.task_repo.save(task)
        elif task.status == "failure" and message not in (task.message
                                                          or ""):
            # A graceful stop: the exiting interpreter shut taskflow's
            # pools down, the flow failed without reverting and Glance
            # wrote only "Internal Error". Say what happened.
            task.message = "%s (Glance reported: %s)" % (message,
                                                         task.message)
            glance.task_repo.save(task)
    except Exception as exc:
        LOG.warning("Could not mark task %s failed: %s", entry.task_id, exc)


__all__ = ["Decision", "Outcome", "Step", "decide", "recover",
           "recover_on_this_host"]
