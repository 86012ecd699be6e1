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

"""Failure semantics, crash safety and data handoff shared by every plugin.

Glance only drops the import lock when a plugin fails: unless a plugin's
revert cleans up, the image stays ``importing`` for good and its staged file
stays (re-staging then answers 409). Every plugin task here therefore reverts
the same way: what it changed on the image goes back, the image returns to
``queued``, the target stores move from ``os_glance_importing_to_stores`` to
``os_glance_failed_import``, and the staged file plus every file the plugin
made are deleted, so the user can stage a fixed image and import again.
Failures reach Glance as its ``UploadException``, the one exception whose
text Glance copies into the task message (anything else becomes "Task
failed due to Internal Error"): the engines raise glance_ext's own errors
(``glance_ext.exceptions``) and ``boundary`` translates them once, here,
by kind, so no plugin writes its own except blocks.

A crash or stop runs no revert at all, so each import also keeps one entry
in the import journal (``journal``), shared by our plugin tasks of that
import through ``ImportRecord``: the step, our files, what we changed and
the size of the staged upload. The entry ends with the import, either way
(``on_import_end``); an entry whose process died is for ``recovery``. So
that an interrupted glance-direct import can keep the user's upload, no
plugin changes or deletes the staged upload during the import: each writes
its output to a file of its own and hands it on as the new ``file_path``;
the upload is deleted when the import has succeeded.

Plugins hand structured results to later plugins through taskflow's
``provides``; a later task declares an argument named like the symbol, e.g.
``def execute(self, file_path, glance_ext_validation_report=None)``.
"""

import functools
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from glance.common import exception as glance_exception
from oslo_config import cfg
from oslo_log import log as logging
from taskflow import task

from glance_ext import exceptions
from glance_ext.common import files
from glance_ext import plugins
from glance_ext.plugins import journal as journal_mod
from glance_ext.plugins import options
from glance_ext.plugins.journal import Step

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
options.register_opts(CONF)

# The taskflow symbol the validate plugin provides: Report.to_dict().
VALIDATION_REPORT = "glance_ext_validation_report"

# For these methods Glance's own download task reverts after us and
# unconditionally sets ``queued``, moves the stores and deletes the staged
# file; setting ``queued`` first would make its revert fail
# (InvalidImageStatusTransition queued -> queued) and hide our message
# behind "Task failed due to Internal Error".
DOWNLOAD_METHODS = ("web-download", "glance-download")

INCOMPLETE_UPLOAD = "the upload did not complete; stage the image again"


class PluginFailure(glance_exception.UploadException):
    """A plugin refused the import; the text reaches ``glance image-tasks``."""

    def __init__(self, message: str) -> None:
        # GlanceException %-formats only when kwargs are given; the message
        # is used as is.
        super().__init__(message)


def translate(task: "ImportPluginTask", exc: BaseException) -> Exception:
    """The exception Glance gets for ``exc`` raised inside ``task``.

    Like requests translating urllib3's errors, this is the one place
    where glance_ext's error kinds become what Glance understands: an
    ``UploadException`` whose text names the plugin and says what to do,
    or Glance's own ``TaskAbortedError`` when the import lock was lost.
    """
    name = task.entry_point
    if isinstance(exc, exceptions.Interrupted):
        return glance_exception.TaskAbortedError()
    if isinstance(exc, exceptions.ConfigurationError):
        return PluginFailure("%s %s: %s (fix %s)" % (
            name, task.misconfigured, exc, task.config_hint))
    if isinstance(exc, exceptions.ToolUnavailable):
        return PluginFailure("%s cannot run on this Glance host: %s"
                             % (name, exc))
    if isinstance(exc, exceptions.ImageRefused):
        return PluginFailure("%s: %s" % (task.refusal % {"name": name}, exc))
    if isinstance(exc, OSError):
        return PluginFailure("%s could not %s: %s" % (
            name, task.doing, exc.strerror or exc))
    return PluginFailure("%s could not %s: %s" % (name, task.doing, exc))


def boundary(execute: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a plugin's ``execute``: errors of glance_ext (and OSError)
    leave it as what Glance understands (``translate``). The signature is
    kept (taskflow reads the arguments from it)."""
    @functools.wraps(execute)
    def wrapper(self: "ImportPluginTask", *args: Any, **kwargs: Any) -> Any:
        try:
            return execute(self, *args, **kwargs)
        except (PluginFailure, glance_exception.TaskAbortedError):
            raise
        except (exceptions.GlanceExtError, OSError) as exc:
            raise translate(self, exc) from exc
    return wrapper


def local_path(file_path: str) -> str:
    """``file:///staging/<id>`` -> ``/staging/<id>``."""
    return file_path[len("file://"):] if file_path.startswith(
        "file://") else file_path


def output_path(staged: str, image_id: str, suffix: str) -> str:
    """Where a plugin writes its output: ``<staging>/<image id><suffix>``.

    Named from the image id (not from its input, which may be another
    plugin's output), in the staging directory: Glance's staging cleaner
    maps ``<image id>.<anything>`` back to the image.
    """
    return os.path.join(os.path.dirname(staged), image_id + suffix)


def flow_for(task_class: type, glance_kwargs: Dict[str, Any],
             **extra: Any) -> Any:
    """A plugin's ``get_flow``: one task built from Glance's kwargs.

    Every plugin needs the same arguments of Glance's (above all
    ``import_req``: the revert depends on the import method), so they are
    taken in one place; ``extra`` names what a plugin needs beyond them.
    Hosts without the start-up recovery filter recover interrupted imports
    here (with the filter this finds nothing: one listdir).
    """
    from taskflow.patterns import linear_flow

    from glance_ext.plugins import recovery

    recovery.recover_on_this_host(CONF, "at an import")
    task_type = glance_kwargs.get("task_type", "api_image_import")
    extra_args = {name: glance_kwargs.get(source)
                  for name, source in extra.items()}
    return linear_flow.Flow(task_type).add(task_class(
        task_id=glance_kwargs.get("task_id"), task_type=task_type,
        action_wrapper=glance_kwargs.get("action_wrapper"),
        stores=glance_kwargs.get("backend") or [],
        import_req=glance_kwargs.get("import_req"), **extra_args))


def restore(action: Any, attributes: Optional[Dict[str, Any]] = None,
            properties: Optional[Dict[str, Optional[str]]] = None) -> None:
    """Inside ``with action_wrapper as action``: what our plugins changed
    goes back. ``properties`` maps each property we set to its value
    before (None: it did not exist)."""
    if attributes:
        action.set_image_attribute(**attributes)
    for key, before in (properties or {}).items():
        if before is None:
            action.pop_extra_property(key)
        else:
            action.set_image_extra_properties({key: before})


def restore_and_requeue(action: Any, stores: Sequence[str],
                        original_attributes: Optional[Dict[str, Any]] = None,
                        properties: Optional[Dict[str, Optional[str]]] = None,
                        requeue: bool = True) -> None:
    """Inside ``with action_wrapper as action``: undo a failed import.

    The attributes a plugin changed go back (a retry stages the user's
    original data again), its properties go back, and an ``importing``
    image returns to ``queued`` with its stores moved to
    ``os_glance_failed_import``. Only the first caller finds it
    ``importing``: Glance refuses ``queued -> queued``. ``requeue=False``
    where Glance's own download task requeues after us.
    """
    restore(action, original_attributes, properties)
    if requeue and action.image_status == "importing":
        action.set_image_attribute(status="queued")
        if stores:
            action.remove_importing_stores(stores)
            action.add_failed_stores(stores)


def require_complete_upload(plugin: str, import_method: Optional[str],
                            recorded_size: Optional[int],
                            path: str) -> None:
    """Refuse staged data that is not a whole ``image-stage`` upload.

    Glance records the image's ``size`` only when staging has finished
    (``ImageDataController.stage``): a glance-api killed mid-stage leaves a
    partial file and no size (or the size of an earlier stage), and Glance
    would import that file. So for glance-direct the staged file must be
    exactly ``recorded_size`` bytes long. web-download and glance-download
    write the file in the import task itself and check its length there
    (no size is recorded before the store upload), so they are not judged
    here. The first of our plugins to run calls this (``ImportRecord``) on
    the staged upload, which no plugin changes.
    """
    if import_method != "glance-direct":
        return
    try:
        staged: Optional[int] = os.path.getsize(path)
    except OSError:
        staged = None
    if recorded_size is not None and staged == recorded_size:
        return
    # Raised as it is (not through translate): the user's data is not
    # judged, the upload is incomplete.
    raise PluginFailure(
        "Import refused by %s: %s (the staged data is %s, Glance recorded "
        "%s)" % (plugin, INCOMPLETE_UPLOAD,
                 "missing" if staged is None else "%d bytes" % staged,
                 "no size" if recorded_size is None
                 else "%d bytes" % recorded_size))


def on_import_end(action_wrapper: Any, callback: Callable[[], None]) -> None:
    """Call ``callback`` when Glance ends this import, either way.

    Glance drops the import lock exactly once at the end of an import:
    ``_CompleteTask`` on success, ``_ImageLock``'s revert (the flow's first
    task, so the last to revert) on failure. The plugins share Glance's
    ``action_wrapper`` object with those tasks, so wrapping its
    ``drop_lock_for_task`` is the one hook there is after the store upload
    and the staging clean-up. A process that dies first never calls it;
    that is what the import journal is for.
    """
    original = getattr(action_wrapper, "drop_lock_for_task", None)
    if original is None:
        return

    def drop_lock_for_task() -> Any:
        try:
            return original()
        finally:
            try:
                callback()
            except Exception:
                LOG.exception("glance_ext: end-of-import hook failed for "
                              "image %s", action_wrapper.image_id)
    action_wrapper.drop_lock_for_task = drop_lock_for_task


def delete_files(paths: Sequence[str]) -> None:
    """Delete what a plugin wrote; a file already gone is fine."""
    for path in paths:
        files.unlink_quietly(path)


def _last_of_ours() -> Optional[str]:
    """The last of our plugins in ``image_import_plugins``: after it comes
    Glance's store upload."""
    enabled = list(getattr(getattr(CONF, "image_import_opts", None),
                           "image_import_plugins", None) or ())
    ours = [name for name in enabled if name in plugins.ORDER]
    return ours[-1] if ours else None


class ImportRecord:
    """The journal entry of one import, shared by our plugin tasks of it.

    It hangs on Glance's ``action_wrapper`` of the import, the one object
    all tasks of an import (ours and Glance's) share. The tasks of one
    import run one after the other in one thread, so it needs no lock.
    """

    ATTRIBUTE = "_glance_ext_import_record"

    def __init__(self, journal: journal_mod.Journal,
                 entry: journal_mod.Entry) -> None:
        self.journal = journal
        self.entry = entry
        self.reverted = False

    @classmethod
    def for_task(cls, plugin: "ImportPluginTask",
                 staged: str) -> "ImportRecord":
        """The record of ``plugin``'s import, made by the first of our
        plugins to run (which also sees the size Glance recorded for the
        staged upload)."""
        record = getattr(plugin.action_wrapper, cls.ATTRIBUTE, None)
        if record is not None:
            return record
        with plugin.action_wrapper as action:
            size = action.image_size
        entry = journal_mod.Entry(
            image_id=plugin.image_id, task_id=plugin.task_id,
            method=plugin.method, stores=list(plugin.stores),
            staged_path=os.path.join(os.path.dirname(staged),
                                     plugin.image_id),
            staged_size=size,
            owner=journal_mod.Owner.this_process(options.host(CONF)))
        journal = journal_mod.Journal(options.journal_dir(
            CONF, os.path.dirname(staged)), host=options.host(CONF))
        record = cls(journal, entry)
        try:
            journal.write(entry)
        except OSError as exc:
            raise exceptions.ToolUnavailable(
                tool="the import journal", reason="%s cannot be written (%s)"
                % (journal.directory, exc.strerror or exc),
                fix="make it writable by glance-api or set [%s] state_dir"
                % options.GROUP)
        setattr(plugin.action_wrapper, cls.ATTRIBUTE, record)
        on_import_end(plugin.action_wrapper, record.end)
        require_complete_upload(plugin.entry_point, plugin.method, size,
                                entry.staged_path)
        return record

    def save(self) -> None:
        try:
            self.journal.write(self.entry)
        except OSError as exc:  # recovery then knows a little less
            LOG.error("Could not update the import journal of image %s: "
                      "%s", self.entry.image_id, exc)

    def begin(self, step: Step) -> None:
        self.entry.step = step
        self.save()

    def finish(self, step: Step, plugin_name: str) -> None:
        self.entry.done.append(step)
        if plugin_name == _last_of_ours():
            self.entry.step = Step.UPLOAD
        self.save()

    def track(self, path: str) -> None:
        self.entry.files.append(path)
        self.save()

    def remember(self, attributes: Dict[str, Any],
                 properties: Dict[str, Optional[str]]) -> None:
        self.entry.remember(attributes, properties)
        self.save()

    def end(self) -> None:
        """The import is over. On success the staged upload and our files
        Glance did not delete go (Glance deletes only the last
        ``file_path``); a revert has cleaned up already."""
        if not self.reverted:
            delete_files(self.entry.files + [self.entry.staged_path])
        self.journal.remove(self.entry.image_id, self.entry.task_id)


class ImportPluginTask(task.Task):
    """Base task: keeps the plugin kwargs, the journal, and the revert.

    A plugin's ``execute`` calls ``begin(file_path)`` first and
    ``finish()`` last; it records every file it makes with ``track_file``
    and every change to the image with ``remember_original`` (attributes)
    or ``set_properties``, so both its revert and the crash recovery can
    put the image back.
    """

    plugin_name = "plugin"
    # The glance_ext_* entry point name and the journal step of the plugin.
    entry_point = ""
    step: Optional[Step] = None
    # For messages (``translate``): what the plugin is doing (set it as
    # the work goes on), how a refusal and a configuration error are
    # introduced and where the operator fixes the latter.
    doing = "import the image"
    refusal = "Image rejected by %(name)s"
    misconfigured = "is misconfigured"
    config_hint = "glance-image-import.conf"

    def __init__(self, *, task_id: str, task_type: str, action_wrapper: Any,
                 stores: Optional[Sequence[Optional[str]]] = None,
                 import_req: Optional[Dict[str, Any]] = None,
                 provides: Optional[str] = None) -> None:
        self.task_id = task_id
        self.task_type = task_type
        self.action_wrapper = action_wrapper
        self.image_id = action_wrapper.image_id
        self.stores = [s for s in (stores or []) if s]
        self.staged_path: Optional[str] = None
        self.own_files: List[str] = []
        self.original_attributes: Dict[str, Any] = {}
        # Each property we set -> its value before (None: it did not exist).
        self.previous: Dict[str, Optional[str]] = {}
        self.record: Optional[ImportRecord] = None
        self.method = ((import_req or {}).get("method") or {}).get(
            "name") or ""
        self.download_reverts_image = self.method in DOWNLOAD_METHODS
        super().__init__(name="%s-%s-%s" % (task_type, self.plugin_name,
                                            task_id), provides=provides)

    def remember_staged(self, file_path: str) -> str:
        """Record the staged file so revert can delete it; return its path."""
        self.staged_path = local_path(file_path)
        return self.staged_path

    def begin(self, file_path: str) -> str:
        """The start of ``execute``: the local path of ``file_path``; the
        journal now says this plugin's step is running."""
        path = self.remember_staged(file_path)
        self.record = ImportRecord.for_task(self, path)
        if self.step is not None:
            self.record.begin(self.step)
        return path

    def finish(self) -> None:
        """The end of a successful ``execute``."""
        if self.record is not None and self.step is not None:
            self.record.finish(self.step, self.entry_point)

    def is_staged_upload(self, path: str) -> bool:
        """Whether ``path`` is the user's staged upload (not ours)."""
        return os.path.basename(path) == self.image_id

    def track_file(self, path: str) -> str:
        """A file this plugin created: deleted on revert and recovery."""
        self.own_files.append(path)
        if self.record is not None:
            self.record.track(path)
        return path

    def remember_original(self, attributes: Dict[str, Any],
                          added_properties: Sequence[str] = ()) -> None:
        """Before changing the image: what revert must put back.

        A retry stages the user's original data again, so the image must
        describe it again (disk_format, container_format, size), or Glance
        refuses the retry as a format mismatch.
        """
        for key, value in attributes.items():
            self.original_attributes.setdefault(key, value)
        for key in added_properties:
            self.previous.setdefault(key, None)
        if self.record is not None:
            self.record.remember(dict(attributes),
                                 {k: None for k in added_properties})

    def set_properties(self, action: Any, properties: Dict[str, str]) -> None:
        """Inside ``with action_wrapper as action``: set extra properties,
        remembering what each was before."""
        current = action.image_extra_properties
        before = {k: current.get(k) for k in properties
                  if k not in self.previous}
        self.previous.update(before)
        if self.record is not None and before:
            self.record.remember({}, before)
        action.set_image_extra_properties(properties)

    def revert_properties(self) -> Dict[str, str]:
        """Extra properties to record on the image when reverting."""
        return {}

    def revert(self, result: Any = None, flow_failures: Any = None,
               **kwargs: Any) -> None:
        LOG.warning("Reverting %s for image %s", self.plugin_name,
                    self.image_id)
        if self.record is not None:
            self.record.reverted = True
        try:
            with self.action_wrapper as action:
                restore_and_requeue(
                    action, self.stores, self.original_attributes,
                    self.previous, requeue=not self.download_reverts_image)
                props = self.revert_properties()
                if props:
                    action.set_image_extra_properties(props)
        except Exception:  # lock lost or image deleted: still clean files
            LOG.exception("Could not return image %s to queued",
                          self.image_id)
        self.previous = {}
        paths = list(self.own_files)
        staged = self.staged_path or (
            local_path(kwargs["file_path"]) if kwargs.get("file_path")
            else None)
        if staged and not self.download_reverts_image:
            paths.append(staged)
            if self.record is not None:
                # The user's upload, which an earlier plugin's output may
                # have replaced as file_path.
                paths.append(self.record.entry.staged_path)
        delete_files(paths)
