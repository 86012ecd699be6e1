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
result to a file of its own, handed on as the new ``file_path``, so
``glance_ext_validate`` then judges the real image; the staged upload stays
as it is until the import has succeeded (an interrupted import keeps it,
see ``plugins.recovery``). Data that is not compressed passes untouched.
On refusal the shared revert (``plugins.base``) returns the image to
``queued`` and deletes the staged file and our partial output; the reason
is in the task message.
Options: ``[glance_ext_decompress]`` in glance-image-import.conf.
"""

from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units
from taskflow.patterns import linear_flow as lf

from glance_ext.common import sizes
from glance_ext.plugins import task_messages
from glance_ext.decompression import codecs
from glance_ext.decompression import options
from glance_ext.decompression import stream
from glance_ext.decompression.settings import Settings
from glance_ext.plugins import base
from glance_ext.plugins.journal import Step

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
options.register_opts(CONF)

PLUGIN_NAME = "glance_ext_decompress"
PROPERTY_PREFIX = "glance_ext_decompress_"
OUTPUT_SUFFIX = ".glance_ext_decompress"


class DecompressImage(base.ImportPluginTask):
    plugin_name = "Decompress_Image"
    entry_point = PLUGIN_NAME
    step = Step.DECOMPRESS

    def __init__(self, *, task_repo: Any = None, **kwargs: Any) -> None:
        super().__init__(provides="file_path", **kwargs)
        self.messages = task_messages.TaskMessages(task_repo, self.task_id)
        self._last_report = 0

    doing = "read the staged data"

    @base.boundary
    def execute(self, file_path: str) -> str:
        src = self.begin(file_path)
        settings = Settings.from_conf(CONF)
        with self.action_wrapper as action:
            container = action.image_container_format
            staged_size = action.image_size
        if settings.skip_compressed_container and container == "compressed":
            LOG.info("Image %s has container_format compressed; not "
                     "decompressed", self.image_id)
            self.finish()
            return file_path
        codec = codecs.detect_file(src)
        if codec is None or codec not in settings.codecs:
            self.finish()
            return file_path
        tmp = self.track_file(base.output_path(src, self.image_id,
                                               OUTPUT_SUFFIX))
        self.messages.set("glance_ext_decompress: decompressing %s data"
                          % codec)
        self.doing = "decompress the %s data" % codec
        result = stream.decompress(src, codec, tmp, settings.limits,
                                   on_progress=self._progress(codec))
        props = {"codec": codec,
                 "compressed_size": str(result.compressed_size)}
        if result.member:
            props["member"] = result.member[:255]
        # A later task may fail: the image must then describe the data as
        # the user staged it, so staging the same archive again works.
        self.remember_original({"container_format": container,
                                "size": staged_size})
        with self.action_wrapper as action:
            action.set_image_attribute(size=result.output_size)
            if container == "compressed":
                action.set_image_attribute(container_format="bare")
            self.set_properties(action, {PROPERTY_PREFIX + k: v
                                         for k, v in props.items()})
        self.messages.set("glance_ext_decompress: %s data decompressed to %s "
                          "in %.1fs" % (codec,
                                        sizes.human(result.output_size),
                                        result.seconds))
        LOG.info("Image %s: %s %d -> %d bytes (%d allocated) in %.2fs",
                 self.image_id, codec, result.compressed_size,
                 result.output_size, result.allocated_bytes, result.seconds)
        self.finish()
        # Every later task (validate, convert, the store upload and
        # Glance's staging clean-up) gets the decompressed data.
        return "file://" + tmp

    def _progress(self, codec: str):
        def report(total: int, consumed: int) -> None:
            if total - self._last_report >= 256 * units.Mi:
                self._last_report = total
                self.messages.set("glance_ext_decompress: decompressing %s "
                                  "data: %s written" % (
                                      codec, sizes.human(total)))
        return report


def get_flow(**kwargs: Any) -> lf.Flow:
    """Glance's plugin entry point (kwargs as documented by Glance)."""
    return base.flow_for(DecompressImage, kwargs, task_repo="task_repo")
