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

"""The ``glance_ext_inject`` import plugin.

Looks inside the staged image (``glance_ext.guest``), sets the nova
properties it discovered and those of the operator's rules, records the
Image Guide check results, and under ``check_policy = enforce`` rejects an
image that fails them. Every value is checked against the metadefs catalog
first; a property the user set is kept unless a rule overrides it. On
revert it removes what it set (restoring a user value it replaced).

List it after ``glance_ext_validate`` and any conversion plugin: it reads
the final staged file and the image's current disk_format. Options:
``[glance_ext_inject]`` (``glance_ext.injection.options``), read at each
import; the guest engine's limits come from ``[glance_ext_guest]`` in the
same file. Nothing here may raise from ``get_flow``: stevedore would log
it and Glance would import the image without the plugin.
"""

import os
import time
from typing import Any, Dict, List, Optional

from oslo_config import cfg
from oslo_log import log as logging
from taskflow.patterns import linear_flow as lf

from glance_ext import exceptions
from glance_ext import guest
from glance_ext.guest import eol as eol_mod
from glance_ext.guest import sbom as sbom_mod
from glance_ext.injection import discovered as discovered_mod
from glance_ext.injection import facts as facts_mod
from glance_ext.injection import options
from glance_ext.injection import plan as plan_mod
from glance_ext.injection import rules as rules_mod
from glance_ext.injection.settings import Settings
from glance_ext.plugins import base
from glance_ext.plugins.journal import Step

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
options.register_opts(CONF)

PLUGIN_NAME = "glance_ext_inject"
PREFIX = discovered_mod.PREFIX
PROP_SET = PREFIX + "properties"
PROP_WARNING = PREFIX + "warning"
PROP_REASON = PREFIX + "reason"
PROP_INSPECTION_ERROR = PREFIX + "inspection_error"
PROP_PACKAGES = PREFIX + "packages"
PROP_KERNEL = PREFIX + "kernel"
PROP_SBOM_SHA256 = PREFIX + "sbom_sha256"
PROP_OS_EOL = PREFIX + "os_eol"
PROP_CHECK_OS_EOL = discovered_mod.check_property("os_eol")
SBOM_SUFFIX = ".cdx.json"
REJECTED = "Image rejected by glance_ext_inject: "


class InjectProperties(base.ImportPluginTask):
    plugin_name = "Inject_Properties"
    entry_point = PLUGIN_NAME
    step = Step.INJECT

    def __init__(self, *, context: Any = None, image_repo: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context
        self.image_repo = image_repo
        self.rejection: Dict[str, str] = {}
        self.sbom_path: Optional[str] = None

    doing = "inspect the guest"
    misconfigured = "configuration error"
    config_hint = "glance-image-import.conf or the rules file"

    @base.boundary
    def execute(self, file_path: str,
                glance_ext_validation_report: Optional[Dict] = None) -> None:
        # The image's disk_format is authoritative, not the validation
        # report's: validate's "correct" policy and conversion update it,
        # and file_path is the final staged file.
        start = time.monotonic()
        path = self.begin(file_path)
        config = Settings.from_conf(CONF)
        with self.action_wrapper as action:
            disk_format = action.image_disk_format
            existing = action.image_extra_properties
        user_props = {k: v for k, v in existing.items()
                      if not k.startswith(("os_glance", PREFIX))}
        report, inspect_error = self._inspect(path, disk_format)
        drivers = None
        if ((report.get("os") or {}).get("os_type") == "windows" and
                "windows_drivers" in config.settings.enabled):
            drivers = report.get("windows_drivers")
        found, notes = discovered_mod.discover(report, config.settings,
                                               drivers)
        facts = facts_mod.Facts.build(
            report, disk_format,
            project=getattr(self.context, "project_id", None),
            roles=getattr(self.context, "roles", None) or (),
            visibility=self._visibility())
        applied = rules_mod.evaluate(config.rules, facts)
        for _rule, (_props, skipped) in applied:
            notes.extend(skipped)
        plan = plan_mod.build(
            found, [(r, p) for r, (p, _s) in applied], user_props,
            config.ruleset, own_prefix=PREFIX)
        notes.extend(plan.notes)
        for key, (user, ours) in plan.kept_user.items():
            notes.append("kept %s=%s set by the user (not %s)"
                         % (key, user, ours))
        records = {}
        if inspect_error:
            records[PROP_INSPECTION_ERROR] = inspect_error[:255]
        sbom_text = self._inventory(config, report, records, notes)
        warnings: List[str] = []
        self._apply_policy(config, report, inspect_error, plan.to_set,
                           records, warnings)
        self._apply_eol_policy(config, report, plan.to_set, records,
                               warnings)
        if warnings:
            records[PROP_WARNING] = "; ".join(warnings)[:255]
        if sbom_text is not None and config.sbom_dir:
            self._write_sbom(config.sbom_dir, sbom_text)
        to_set = dict(plan.to_set)
        to_set.update(records)
        mine = sorted(k for k in to_set if not k.startswith(PREFIX))
        to_set[PROP_SET] = ",".join(mine) if mine else "none"
        with self.action_wrapper as action:
            current = action.image_extra_properties
            # A re-import after a rejection must not keep old records.
            for key in list(current):
                if key.startswith(PREFIX) and key not in to_set:
                    action.pop_extra_property(key)
            self.set_properties(action, to_set)
        for note in notes:
            LOG.info("Image %s: %s", self.image_id, note)
        LOG.info("Image %s: glance_ext_inject set %s in %.3fs",
                 self.image_id, ", ".join(
                     "%s=%s (%s)" % (k, to_set[k], plan.sources.get(k))
                     for k in mine) or "nothing",
                 time.monotonic() - start)
        self.finish()

    def _inspect(self, path: str, disk_format: str):
        if disk_format not in guest.SUPPORTED_FORMATS:
            return {}, ("disk_format %s cannot be inspected" % disk_format)
        # The host's faults (ToolUnavailable) leave through the boundary.
        try:
            report = guest.inspect_guest(path, disk_format, conf=CONF)
        except exceptions.GuestInspectionError as exc:
            return {}, str(exc)
        if report.tool_unavailable:
            raise exceptions.ToolUnavailable(report.get("error"))
        data = report.to_dict()
        if not report.ok:
            return data, str(data.get("error"))
        if (data.get("os") or {}).get("os_type") not in ("linux",
                                                         "windows"):
            return data, "no operating system recognised in the image"
        return data, None

    def _visibility(self) -> Optional[str]:
        if self.image_repo is None:
            return None
        try:
            return getattr(self.image_repo.get(self.image_id), "visibility",
                           None)
        except Exception:  # a rule on visibility then does not match
            LOG.warning("Image %s: cannot read its visibility for the "
                        "inject rules", self.image_id, exc_info=True)
            return None

    def _inventory(self, config: Settings, report: Dict[str, Any],
                   records: Dict[str, str], notes: List[str]
                   ) -> Optional[str]:
        """Record the inventory's summary; the SBOM text, if one was made."""
        inv = report.get("packages")
        if inv is None:
            return None
        if "packages" in config.settings.enabled:
            if inv.get("error"):
                records[PROP_PACKAGES] = "unknown"
                notes.append("package inventory failed: %s" % inv["error"])
            else:
                records[PROP_PACKAGES] = str(inv.get("count", 0))
            kernels = [k["version"] for k in inv.get("kernels") or []]
            if kernels:
                records[PROP_KERNEL] = ",".join(kernels)[:255]
        if "packages" not in config.settings.enabled and \
                not config.sbom_dir:
            return None
        try:
            text = sbom_mod.to_json(sbom_mod.build(
                guest.GuestReport(report), image_id=self.image_id))
        except sbom_mod.SbomError as exc:
            notes.append("no SBOM: %s" % exc)
            return None
        records[PROP_SBOM_SHA256] = sbom_mod.sha256(text)
        return text

    def _write_sbom(self, directory: str, text: str) -> None:
        path = os.path.join(directory, self.image_id + SBOM_SUFFIX)
        tmp = path + ".tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise base.PluginFailure(
                "glance_ext_inject cannot write the SBOM to [%s] sbom_dir "
                "%s: %s (create the directory, let glance-api write to it, "
                "or unset sbom_dir)" % (options.GROUP, directory,
                                        exc.strerror or exc))
        self.sbom_path = path
        LOG.info("Image %s: SBOM written to %s", self.image_id, path)

    def _apply_eol_policy(self, config: Settings, report: Dict[str, Any],
                          props: Dict[str, str], records: Dict[str, str],
                          warnings: List[str]) -> None:
        data = report.get("eol")
        if not data:
            return
        info = eol_mod.EolInfo.from_dict(data)
        if info.lookup is eol_mod.Lookup.DB_MISSING and \
                config.eol_policy != "record":
            raise exceptions.ConfigurationError(
                "os_eol_policy = %s needs osinfo-db: %s"
                % (config.eol_policy, info.message))
        verdict = eol_mod.evaluate(info, config.eol_warn_days)
        records[PROP_OS_EOL] = info.eol_date.isoformat() \
            if info.eol_date else "unknown"
        records[PROP_CHECK_OS_EOL] = {
            eol_mod.State.ENDED: "fail", eol_mod.State.UNKNOWN: "unknown"
        }.get(verdict.state, "pass")
        if config.eol_policy == "record" or verdict.state in (
                eol_mod.State.SUPPORTED, eol_mod.State.UNKNOWN):
            return
        if verdict.state is eol_mod.State.ENDED and \
                config.eol_policy == "enforce":
            self._reject(props, records, "os_eol: %s" % verdict.text)
        LOG.warning("Image %s: os_eol: %s", self.image_id, verdict.text)
        warnings.append("os_eol: " + verdict.text)

    def _apply_policy(self, config: Settings, report: Dict[str, Any],
                      inspect_error: Optional[str], props: Dict[str, str],
                      records: Dict[str, str],
                      warnings: List[str]) -> None:
        if inspect_error and config.require_inspection:
            self._reject(props, records, "the guest could not be inspected "
                         "(%s) and require_inspection is set" % inspect_error)
        failed = guest.GuestReport(report).failed_checks(config.enforced)
        if not failed or config.check_policy == "record":
            return
        text = "failed Image Guide checks: " + "; ".join(
            "%s (%s): %s" % (c.id, c.severity,
                             ", ".join(c.evidence)[:200])
            for c in failed)
        if config.check_policy == "enforce":
            self._reject(props, records, text)
        LOG.warning("Image %s: %s", self.image_id, text)
        warnings.append(text)

    def _reject(self, props: Dict[str, str], records: Dict[str, str],
                reason: str) -> None:
        LOG.info("Image %s: %s%s", self.image_id, REJECTED, reason)
        self.rejection = {k: v for k, v in props.items()
                          if k.startswith(PREFIX)}
        self.rejection.update(records)
        self.rejection[PROP_REASON] = reason[:255]
        raise exceptions.ImageRefused(reason)

    def revert(self, result: Any = None, flow_failures: Any = None,
               **kwargs: Any) -> None:
        # The shared revert puts back the properties set_properties set.
        if self.sbom_path:
            # The image goes back to queued: its SBOM describes nothing.
            try:
                os.unlink(self.sbom_path)
            except OSError:
                LOG.warning("Image %s: could not remove its SBOM %s",
                            self.image_id, self.sbom_path)
            self.sbom_path = None
        super().revert(result=result, flow_failures=flow_failures, **kwargs)

    def revert_properties(self) -> Dict[str, str]:
        # Only our own rejection is recorded on the queued image, so the
        # user sees which checks failed; nothing else we set survives.
        return dict(self.rejection)


def get_flow(**kwargs: Any) -> lf.Flow:
    """Glance's plugin entry point (kwargs as documented by Glance)."""
    return base.flow_for(InjectProperties, kwargs, context="context",
                         image_repo="image_repo")
