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
from typing import Any, Dict, Optional

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
from glance_ext.conversion import target as target_mod
from glance_ext.plugins import task_messages
from glance_ext.inspection import options as validate_options
from glance_ext.inspection import policy as policy_mod
from glance_ext.inspection.report import Report
from glance_ext.plugins import base
from glance_ext.plugins import options as plugin_options
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
        props = {"source_format": source_format,
                 "reason": decision.reason[:255],
                 "source_disk_format": claimed or "",
                 "source_size": str(source_size)}
        if settings.record_source_sha512:
            self.messages.set("glance_ext_convert: hashing the source")
            props["source_sha512"] = engine_mod.sha512_of(src)
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
