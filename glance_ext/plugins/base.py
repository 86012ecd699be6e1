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

"""Failure semantics and data handoff shared by every import plugin.

Glance only drops the import lock when a plugin fails: unless a plugin's
revert cleans up, the image stays ``importing`` for good and its staged file
stays (re-staging then answers 409). Every plugin task here therefore reverts
the same way: image back to ``queued``, the target stores moved from
``os_glance_importing_to_stores`` to ``os_glance_failed_import``, and the
staged file plus every file the plugin made deleted, so the user can stage a
fixed image and import again. Failures are raised as Glance's
``UploadException``, the one exception whose text Glance copies into the
task message (anything else becomes "Task failed due to Internal Error").

Plugins hand structured results to later plugins through taskflow's
``provides``; a later task declares an argument named like the symbol, e.g.
``def execute(self, file_path, glance_ext_validation_report=None)``.
"""

import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from glance.common import exception as glance_exception
from oslo_log import log as logging
from taskflow import task

LOG = logging.getLogger(__name__)

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


def local_path(file_path: str) -> str:
    """``file:///staging/<id>`` -> ``/staging/<id>``."""
    return file_path[len("file://"):] if file_path.startswith(
        "file://") else file_path


def flow_for(task_class: type, glance_kwargs: Dict[str, Any],
             **extra: Any) -> Any:
    """A plugin's ``get_flow``: one task built from Glance's kwargs.

    Every plugin needs the same arguments of Glance's (above all
    ``import_req``: the revert depends on the import method), so they are
    taken in one place; ``extra`` names what a plugin needs beyond them.
    """
    from taskflow.patterns import linear_flow

    task_type = glance_kwargs.get("task_type", "api_image_import")
    extra_args = {name: glance_kwargs.get(source)
                  for name, source in extra.items()}
    return linear_flow.Flow(task_type).add(task_class(
        task_id=glance_kwargs.get("task_id"), task_type=task_type,
        action_wrapper=glance_kwargs.get("action_wrapper"),
        stores=glance_kwargs.get("backend") or [],
        import_req=glance_kwargs.get("import_req"), **extra_args))


def restore_and_requeue(action: Any, stores: Sequence[str],
                        original_attributes: Optional[Dict[str, Any]] = None,
                        added_properties: Sequence[str] = (),
                        requeue: bool = True) -> None:
    """Inside ``with action_wrapper as action``: undo a failed import.

    The attributes a plugin changed go back (a retry stages the user's
    original data again), its added properties go, and an ``importing``
    image returns to ``queued`` with its stores moved to
    ``os_glance_failed_import``. Only the first caller finds it
    ``importing``: Glance refuses ``queued -> queued``. ``requeue=False``
    where Glance's own download task requeues after us.
    """
    if original_attributes:
        action.set_image_attribute(**original_attributes)
    for key in added_properties:
        action.pop_extra_property(key)
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
    here. The first of our plugins to see the staged file calls this: what
    it replaces (decompression) it records the size of.
    """
    if import_method != "glance-direct":
        return
    try:
        staged: Optional[int] = os.path.getsize(path)
    except OSError:
        staged = None
    if recorded_size is not None and staged == recorded_size:
        return
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
    that is what the crash journal is for.
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
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            LOG.error("Could not delete %s: %s", path, exc)


class ImportPluginTask(task.Task):
    """Base task: keeps the plugin kwargs and implements the revert."""

    plugin_name = "plugin"
    # The name operators list in image_import_plugins, for messages.
    entry_point = "glance_ext"

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
        self.added_properties: List[str] = []
        method = ((import_req or {}).get("method") or {}).get("name")
        self.import_method: Optional[str] = method
        self.download_reverts_image = method in DOWNLOAD_METHODS
        super().__init__(name="%s-%s-%s" % (task_type, self.plugin_name,
                                            task_id), provides=provides)

    def remember_staged(self, file_path: str) -> str:
        """Record the staged file so revert can delete it; return its path."""
        self.staged_path = local_path(file_path)
        return self.staged_path

    def check_upload_complete(self, path: str) -> None:
        """``require_complete_upload`` for this task's import."""
        if self.import_method != "glance-direct":
            return
        with self.action_wrapper as action:
            recorded = action.image_size
        require_complete_upload(self.entry_point, self.import_method,
                                recorded, path)

    def track_file(self, path: str) -> str:
        """A file this plugin created: deleted on revert."""
        self.own_files.append(path)
        return path

    def remember_original(self, attributes: Dict[str, Any],
                          added_properties: Sequence[str] = ()) -> None:
        """Before changing the image: what revert must put back.

        A retry stages the user's original data again, so the image must
        describe it again (disk_format, container_format, size), or Glance
        refuses the retry as a format mismatch.
        """
        self.original_attributes = dict(attributes)
        self.added_properties = list(added_properties)

    def revert_properties(self) -> Dict[str, str]:
        """Extra properties to record on the image when reverting."""
        return {}

    def revert(self, result: Any = None, flow_failures: Any = None,
               **kwargs: Any) -> None:
        LOG.warning("Reverting %s for image %s", self.plugin_name,
                    self.image_id)
        try:
            with self.action_wrapper as action:
                restore_and_requeue(
                    action, self.stores, self.original_attributes,
                    self.added_properties,
                    requeue=not self.download_reverts_image)
                props = self.revert_properties()
                if props:
                    action.set_image_extra_properties(props)
        except Exception:  # lock lost or image deleted: still clean files
            LOG.exception("Could not return image %s to queued",
                          self.image_id)
        paths = list(self.own_files)
        staged = self.staged_path or (
            local_path(kwargs["file_path"]) if kwargs.get("file_path")
            else None)
        if staged and not self.download_reverts_image:
            paths.append(staged)
        delete_files(paths)
