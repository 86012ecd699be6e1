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

"""The ``glance_ext_validate`` import plugin.

Runs the inspection engine on the staged file before any byte reaches a
store. On acceptance it records its properties (and, with
``format_mismatch_policy = correct``, the detected disk_format) and hands the
report to later plugins as ``glance_ext_validation_report``. On rejection it
raises with the reason and the shared revert returns the image to ``queued``.

Options: ``[glance_ext_validate]`` in glance-image-import.conf (see
``glance_ext.inspection.options``); they are read at each import so a bad
value fails that import with a message naming the option. Nothing here may
raise from ``get_flow``: stevedore would log it and Glance would import the
image *without* the plugin.
"""

from typing import Any, Dict

from oslo_config import cfg
from oslo_log import log as logging
from taskflow.patterns import linear_flow as lf

from glance_ext import exceptions
from glance_ext import plugins
from glance_ext.inspection import engine as engine_mod
from glance_ext.inspection import options
from glance_ext.inspection import policy as policy_mod
from glance_ext.inspection.report import PROPERTY_PREFIX
from glance_ext.inspection.report import Report
from glance_ext.plugins import base
from glance_ext.plugins.journal import Step

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
options.register_opts(CONF)

PLUGIN_NAME = "glance_ext_validate"


class ValidateImage(base.ImportPluginTask):
    plugin_name = "Validate_Image"
    entry_point = PLUGIN_NAME
    step = Step.VALIDATE

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(provides=base.VALIDATION_REPORT, **kwargs)
        self.report: Report = None

    doing = "inspect the staged image data"

    @base.boundary
    def execute(self, file_path: str) -> Dict[str, Any]:
        path = self.begin(file_path)
        policy = _load_policy()
        with self.action_wrapper as action:
            claimed = action.image_disk_format
            container = action.image_container_format
            props = action.image_extra_properties
        # A host problem (qemu-img missing) leaves here as such: the image
        # is not judged, nothing says "rejected" on it.
        report = engine_mod.Engine(policy).inspect(path, claimed, container,
                                                   props)
        self.report = report
        LOG.info("Image %s: %s as %s (claimed %s), %d bytes read in %.3fs%s",
                 self.image_id, report.verdict, report.detected_format,
                 claimed, report.bytes_read, report.elapsed_seconds,
                 "" if report.accepted else ": " + report.reason())
        if not report.accepted:
            raise exceptions.ImageRefused(report.reason())
        props = report.to_properties()
        with self.action_wrapper as action:
            # A re-import after a rejection must not keep the old reason.
            for key in list(action.image_extra_properties):
                if key.startswith(PROPERTY_PREFIX) and key not in props:
                    action.pop_extra_property(key)
            self.set_properties(action, props)
            if report.corrected:
                self.remember_original({"disk_format": claimed})
                action.set_image_attribute(disk_format=report.disk_format)
        self.finish()
        return report.to_dict()

    def revert_properties(self) -> Dict[str, str]:
        if self.report is not None and not self.report.accepted:
            return self.report.to_properties()
        return {}


def _load_policy() -> policy_mod.Policy:
    """The policy of this import (PolicyError names a bad option)."""
    policy = policy_mod.Policy.from_conf(CONF)
    enabled = list(getattr(getattr(CONF, "image_import_opts", None),
                           "image_import_plugins", None) or [])
    early = plugins.listed_too_early(PLUGIN_NAME, enabled)
    if early:
        raise exceptions.ConfigurationError(
            "it must run before %s in [image_import_opts] "
            "image_import_plugins" % ", ".join(early))
    return policy


def get_flow(**kwargs: Any) -> lf.Flow:
    """Glance's plugin entry point (kwargs as documented by Glance)."""
    return base.flow_for(ValidateImage, kwargs)
