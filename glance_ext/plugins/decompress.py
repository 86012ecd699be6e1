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

"""The ``glance_ext_decompress`` import plugin (placed first).

Finds gzip, bzip2, xz, zstd or single-member zip data in the staged file by
its magic bytes, streams it out under size, ratio and free-space limits
(``glance_ext.decompression.stream``) and replaces the staged file with the
result, so ``glance_ext_validate`` then judges the real image. Data that is
not compressed passes untouched. On refusal the shared revert
(``plugins.base``) returns the image to ``queued`` and deletes the staged
file and our partial output; the reason is in the task message.
Options: ``[glance_ext_decompress]`` in glance-image-import.conf.
"""

import os
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units
from taskflow.patterns import linear_flow as lf

from glance_ext.conversion import preflight
from glance_ext.conversion import task_messages
from glance_ext.decompression import codecs
from glance_ext.decompression import options
from glance_ext.decompression import stream
from glance_ext.plugins import base

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
options.register_opts(CONF)

PLUGIN_NAME = "glance_ext_decompress"
PROPERTY_PREFIX = "glance_ext_decompress_"
OUTPUT_SUFFIX = ".glance_ext_decompress.tmp"


def load_limits(conf: cfg.ConfigOpts = CONF):
    try:
        g = getattr(conf, options.GROUP)
        unknown = set(g.codecs) - set(options.CODECS)
        if unknown:
            raise ValueError("codecs has unknown codec(s) %s; known: %s"
                             % (", ".join(sorted(unknown)),
                                ", ".join(options.CODECS)))
        limits = stream.Limits(
            max_output=g.max_output_gb * units.Gi, max_ratio=g.max_ratio,
            ratio_grace=g.ratio_grace_mb * units.Mi,
            free_space_reserve=g.free_space_reserve_mb * units.Mi,
            xz_memory_limit=g.xz_memory_limit_mb * units.Mi,
            zstd_max_window=g.zstd_max_window_mb * units.Mi)
        return limits, set(g.codecs), g.skip_compressed_container
    except (cfg.Error, ValueError) as exc:
        raise base.PluginFailure("glance_ext_decompress is misconfigured: "
                                 "invalid option in [%s]: %s (fix "
                                 "glance-image-import.conf)"
                                 % (options.GROUP, exc))


class DecompressImage(base.ImportPluginTask):
    plugin_name = "Decompress_Image"
    entry_point = PLUGIN_NAME

    def __init__(self, *, task_repo: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.messages = task_messages.TaskMessages(task_repo, self.task_id)
        self._last_report = 0

    def execute(self, file_path: str) -> None:
        src = self.remember_staged(file_path)
        # First of our plugins: the data as staged must be a whole upload
        # before it is replaced (validate then sees the size set below).
        self.check_upload_complete(src)
        limits, enabled, skip_compressed = load_limits()
        with self.action_wrapper as action:
            container = action.image_container_format
        if skip_compressed and container == "compressed":
            LOG.info("Image %s has container_format compressed; not "
                     "decompressed", self.image_id)
            return
        try:
            codec = codecs.detect_file(src)
        except OSError as exc:
            raise base.PluginFailure("glance_ext_decompress cannot read the "
                                     "staged data: %s" % exc.strerror)
        if codec is None or codec not in enabled:
            return
        tmp = self.track_file(src + OUTPUT_SUFFIX)
        self.messages.set("glance_ext_decompress: decompressing %s data"
                          % codec)
        try:
            result = stream.decompress(src, codec, tmp, limits,
                                       on_progress=self._progress(codec))
        except stream.DecompressionRefused as exc:
            raise base.PluginFailure("glance_ext_decompress refused the %s "
                                     "data: %s" % (codec, exc))
        except OSError as exc:
            raise base.PluginFailure("glance_ext_decompress could not write "
                                     "the decompressed image: %s"
                                     % exc.strerror)
        # Same path as before: every later task (validate, convert, the
        # store upload and Glance's staging cleanup) sees the new data.
        os.replace(tmp, src)
        props = {"codec": codec,
                 "compressed_size": str(result.compressed_size)}
        if result.member:
            props["member"] = result.member[:255]
        # A later task may fail: the image must then describe the data as
        # the user staged it, so staging the same archive again works.
        self.remember_original({"container_format": container},
                               [PROPERTY_PREFIX + k for k in props])
        with self.action_wrapper as action:
            action.set_image_attribute(size=result.output_size)
            if container == "compressed":
                action.set_image_attribute(container_format="bare")
            action.set_image_extra_properties(
                {PROPERTY_PREFIX + k: v for k, v in props.items()})
        self.messages.set("glance_ext_decompress: %s data decompressed to %s "
                          "in %.1fs" % (codec,
                                        preflight.human(result.output_size),
                                        result.seconds))
        LOG.info("Image %s: %s %d -> %d bytes (%d allocated) in %.2fs",
                 self.image_id, codec, result.compressed_size,
                 result.output_size, result.allocated_bytes, result.seconds)

    def _progress(self, codec: str):
        def report(total: int, consumed: int) -> None:
            if total - self._last_report >= 256 * units.Mi:
                self._last_report = total
                self.messages.set("glance_ext_decompress: decompressing %s "
                                  "data: %s written" % (
                                      codec, preflight.human(total)))
        return report


def get_flow(**kwargs: Any) -> lf.Flow:
    """Glance's plugin entry point (kwargs as documented by Glance)."""
    return base.flow_for(DecompressImage, kwargs, task_repo="task_repo")
