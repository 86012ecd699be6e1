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

"""The ``glance_ext_convert`` import plugin.

Converts the staged image to the format the import's stores want (see
``glance_ext.conversion``), after ``glance_ext_validate`` has judged the
source. On success the image records the new disk_format, container_format,
size and virtual_size, plus the original's format and size (and optionally
its sha512) as ``glance_ext_convert_*`` properties; the task message shows
progress meanwhile. The staged upload is kept until the import has
succeeded (an interrupted import keeps it, see ``plugins.recovery``); an
intermediate file of ours it converted from (decompressed data) goes as
soon as the output exists. On failure the shared revert
(``plugins.base``) puts the image back to ``queued``, lists the stores in
``os_glance_failed_import`` and deletes every file of ours plus the staged
data. Options: ``[glance_ext_convert]`` in glance-image-import.conf, read
at each import. ``get_flow`` never raises (stevedore would skip the
plugin and Glance would import unconverted).
"""

import os
import threading
import time
from typing import Any, Callable, Dict, Optional

from glance.common import exception as glance_exception
from oslo_config import cfg
from oslo_log import log as logging
from taskflow.patterns import linear_flow as lf

from glance_ext.conversion import engine as engine_mod
from glance_ext.conversion import options
from glance_ext.common import sizes
from glance_ext.conversion import progress as progress_mod
from glance_ext.conversion.settings import Settings
from glance_ext.conversion import slots
from glance_ext.conversion import stream as stream_mod
from glance_ext.conversion import target as target_mod
from glance_ext.plugins import task_messages
from glance_ext.inspection import options as validate_options
from glance_ext.inspection import policy as policy_mod
from glance_ext.inspection.report import Report
from glance_ext.plugins import base
from glance_ext.plugins import options as plugin_options
from glance_ext.plugins import store_cleanup
from glance_ext.plugins.journal import Step

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
options.register_opts(CONF)
validate_options.register_opts(CONF)

PLUGIN_NAME = "glance_ext_convert"
PROPERTY_PREFIX = "glance_ext_convert_"
# Our output next to the staged file; Glance's staging cleaner maps
# "<image id>.<anything>" back to the image, so residue is never orphaned.
OUTPUT_SUFFIX = ".glance_ext_convert."
STREAM_SUFFIX = "raw.stream"
# Glance 33's ImportActionWrapper keeps the image of the running ``with``
# block here; during the store upload it is the image whose size Glance
# checks against the bytes stored (location.ImageProxy._upload_to_store).
UPLOAD_IMAGE = "_image"


class ExpectedSize(int):
    """The size Glance's store upload must have read from the stream.

    Glance compares it with the bytes stored (``uploaded != image.size``,
    location.ImageProxy._upload_to_store) once the store has the whole
    stream. A failed stream is cut short, so that comparison runs
    against this, and Python asks the right-hand int subclass first: it
    raises the stream's own error (Glance's UploadException with our
    message, which Glance shows in the task) instead of Glance's "size of
    uploaded data is different". A sound stream compares as the int.
    """

    def __new__(cls, value: int,
                failure: Callable[[], Optional[Exception]]
                ) -> "ExpectedSize":
        obj = super().__new__(cls, value)
        obj.failure = failure
        return obj

    def __ne__(self, other: object) -> bool:
        error = self.failure()
        if error is not None:
            raise error
        return int(self) != other

    def __eq__(self, other: object) -> bool:
        return not self.__ne__(other)

    __hash__ = int.__hash__


class ConvertImage(base.ImportPluginTask):
    plugin_name = "Convert_Image"
    entry_point = PLUGIN_NAME
    step = Step.CONVERT

    def __init__(self, *, task_repo: Any = None, **kwargs: Any) -> None:
        super().__init__(provides="file_path", **kwargs)
        self.messages = task_messages.TaskMessages(task_repo, self.task_id)
        self._lock_lost = threading.Event()

    doing = "convert the image"
    refusal = "Image rejected by %(name)s's inspection"

    @base.boundary
    def execute(self, file_path: str,
                glance_ext_validation_report: Optional[Dict[str, Any]] = None
                ) -> str:
        src = self.begin(file_path)
        settings = Settings.from_conf(CONF)
        policy = policy_mod.Policy.from_conf(CONF)
        with self.action_wrapper as action:
            claimed = action.image_disk_format
            container = action.image_container_format
        engine = engine_mod.ConversionEngine(settings, policy)
        validated = Report.from_dict(glance_ext_validation_report) \
            if glance_ext_validation_report else None
        source_format = self._source_format(engine, src, claimed, container,
                                            validated)
        stored_as = (validated.disk_format if validated else None) or claimed
        decision = target_mod.decide(settings, source_format, self.stores,
                                     src, stored_as)
        if not decision.convert:
            LOG.info("Image %s not converted: %s", self.image_id,
                     decision.reason)
            self.finish()
            return file_path
        target = decision.target_format
        source_size = os.path.getsize(src)
        choice = self._choose_path(engine, settings, target)
        props = {"source_format": source_format,
                 "reason": decision.reason[:255],
                 "source_disk_format": claimed or "",
                 "source_size": str(source_size),
                 "path": choice.path.value,
                 "path_reason": choice.reason[:255]}
        if settings.record_source_sha512:
            self.messages.set("glance_ext_convert: hashing the source")
            props["source_sha512"] = engine_mod.sha512_of(src)
        if choice.path is stream_mod.Path.STREAM:
            return self._stream(engine, src, source_format, claimed,
                                container, props, settings)
        dst = self.track_file(base.output_path(src, self.image_id,
                                               OUTPUT_SUFFIX + target))
        label = "%s to %s" % (source_format, target)
        self.doing = "convert %s" % label
        self.messages.set("glance_ext_convert: converting %s: starting"
                          % label)
        # The lock lost (should_stop) ends it as QemuImgCancelled, which
        # the boundary turns into Glance's TaskAbortedError; an unreachable
        # coordination backend is a ToolUnavailable (the deployment, not
        # the image), which says how to go on.
        outcome = engine.convert(
            src, source_format, dst, target,
            on_progress=lambda p: self._progress(label, p),
            on_wait=lambda w: self._waiting(label, w, settings),
            should_stop=self._lock_lost.is_set,
            node=plugin_options.host(CONF))
        props.update(target_format=target,
                     seconds="%.2f" % outcome.convert_seconds)
        with self.action_wrapper as action:
            self.remember_original(
                {"disk_format": claimed, "container_format": container,
                 "size": action.image_size})
            action.set_image_attribute(
                disk_format=target, container_format="bare",
                size=outcome.size, virtual_size=outcome.virtual_size)
            self.set_properties(action, {PROPERTY_PREFIX + k: v
                                         for k, v in props.items()})
        if not self.is_staged_upload(src):
            # An intermediate of ours (decompressed data): the output
            # replaces it. The user's upload stays until the import has
            # succeeded, so an interrupted import can keep it.
            base.delete_files([src])
        self.messages.set("glance_ext_convert: converted %s (%s, virtual "
                          "%s) in %.1fs" % (
                              label, sizes.human(outcome.size),
                              sizes.human(outcome.virtual_size),
                              outcome.convert_seconds))
        LOG.info("Image %s converted %s: %d -> %d bytes in %.2fs (cache %s, "
                 "%d process%s)", self.image_id, label, source_size,
                 outcome.size, outcome.convert_seconds, outcome.cache_mode,
                 outcome.processes, "es" if outcome.processes > 1 else "")
        self.finish()
        return "file://" + dst

    def _choose_path(self, engine: engine_mod.ConversionEngine,
                     settings: Settings, target: str
                     ) -> stream_mod.PathChoice:
        enabled = list(getattr(getattr(CONF, "image_import_opts", None),
                               "image_import_plugins", None) or ())
        after = enabled[enabled.index(PLUGIN_NAME) + 1:] \
            if PLUGIN_NAME in enabled else []
        choice = stream_mod.choose_path(
            enabled=settings.stream_raw, target_format=target,
            stores=self.stores, plugins_after=after,
            compare=settings.compare,
            missing_tools=engine.missing_stream_tools()
            if target == "raw" and settings.stream_raw else [],
            size_check=hasattr(self.action_wrapper, UPLOAD_IMAGE))
        LOG.info("Image %s: %s path (%s)", self.image_id, choice.path.value,
                 choice.reason)
        return choice

    def _stream(self, engine: engine_mod.ConversionEngine, src: str,
                source_format: str, claimed: str, container: str,
                props: Dict[str, str], settings: Settings) -> str:
        """Start the streaming conversion and hand Glance's store upload
        its FIFO. The image's size is cleared (Glance compares it with the
        FIFO's st_size, 0, before reading) and set to the virtual size on
        the upload's own image once the upload has opened the stream, so
        Glance itself fails an upload that got fewer bytes."""
        fifo = self.track_file(base.output_path(src, self.image_id,
                                                OUTPUT_SUFFIX + STREAM_SUFFIX))
        label = "%s to raw" % source_format
        self.doing = "convert %s" % label
        self.messages.set("glance_ext_convert: streaming %s: starting"
                          % label)
        vsize_box: Dict[str, int] = {}

        def expect_size() -> None:
            image = getattr(self.action_wrapper, UPLOAD_IMAGE, None)
            if image is not None:
                image.size = ExpectedSize(vsize_box["vsize"],
                                          self._stream_failure)

        self._streaming = engine.start_stream(
            src, source_format, fifo,
            on_progress=lambda p: self._progress(label, p),
            on_wait=lambda w: self._waiting(label, w, settings),
            should_stop=self._lock_lost.is_set, on_reader=expect_size,
            node=plugin_options.host(CONF))
        vsize = vsize_box["vsize"] = self._streaming.virtual_size
        base.on_import_end(self.action_wrapper, self._streaming.cancel)
        props.update(target_format="raw")
        with self.action_wrapper as action:
            self.remember_original(
                {"disk_format": claimed, "container_format": container,
                 "size": action.image_size})
            action.set_image_attribute(
                disk_format="raw", container_format="bare", size=None,
                virtual_size=vsize)
            self.set_properties(action, {PROPERTY_PREFIX + k: v
                                         for k, v in props.items()})
        LOG.info("Image %s: streaming %s (%d bytes) into the store upload",
                 self.image_id, label, vsize)
        self.finish()
        return "file://" + fifo

    def _stream_failure(self) -> Optional[Exception]:
        """The stream's failure as Glance's error with our message."""
        error = self._streaming.failure()
        return None if error is None else base.translate(self, error)

    def revert(self, result: Any = None, flow_failures: Any = None,
               **kwargs: Any) -> None:
        streaming = getattr(self, "_streaming", None)
        if streaming is not None:
            streaming.cancel()
            outcome = streaming.result(timeout=30)
            if outcome is not None and outcome.reader_read:
                # A stream cut short after the upload began: the store
                # may hold the object Glance refused by its size.
                for store in self.stores:
                    found = store_cleanup.remove_partial(store,
                                                         self.image_id)
                    if found.unknown:
                        LOG.warning("%s", found.unknown)
        super().revert(result, flow_failures, **kwargs)

    def _source_format(self, engine: engine_mod.ConversionEngine, src: str,
                       claimed: str, container: str,
                       report: Optional[Report]) -> str:
        if report is not None and report.accepted and \
                report.detected_format:
            return report.detected_format
        # validate did not run before us: qemu-img must never see an image
        # nobody inspected, so inspect it here with the validate engine.
        LOG.warning("Image %s: no validation report (is glance_ext_validate "
                    "enabled before glance_ext_convert?); inspecting here",
                    self.image_id)
        return engine.inspect_source(src, claimed, container).detected_format

    def _progress(self, label: str, p: progress_mod.Progress) -> None:
        if p.phase == "verifying":
            text = "glance_ext_convert: verifying the %s output" % label
        else:
            text = "glance_ext_convert: converting %s: %d%% (%s of %s)" % (
                label, int(p.percent), sizes.human(p.done_bytes),
                sizes.human(p.total_bytes))
        LOG.info("Image %s: %s", self.image_id, text)
        self.messages.set(text)
        self._check_lock()

    def _waiting(self, label: str, wait: slots.Wait,
                 settings: Settings) -> None:
        now = time.monotonic()
        if now - getattr(self, "_last_wait_msg", 0) >= \
                settings.progress_interval_seconds:
            self._last_wait_msg = now
            self.messages.set(
                "glance_ext_convert: %s waiting for a conversion slot "
                "(%s; waited %ds)" % (label, wait.text, int(wait.seconds)))
            self._check_lock()

    def _check_lock(self) -> None:
        # The image deleted or the lock taken over: stop converting for
        # nobody.
        try:
            self.action_wrapper.assert_task_lock()
        except (glance_exception.TaskAbortedError,
                glance_exception.NotFound):
            LOG.warning("Image %s: import lock lost; stopping conversion",
                        self.image_id)
            self._lock_lost.set()
        except Exception as exc:
            LOG.debug("lock check failed: %s", exc)


def get_flow(**kwargs: Any) -> lf.Flow:
    """Glance's plugin entry point (kwargs as documented by Glance)."""
    return base.flow_for(ConvertImage, kwargs, task_repo="task_repo")
