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

"""The inject plugin's settings, read once per import from
``[glance_ext_inject]``, with the operator's rules loaded and checked
against the metadefs catalog. Lives beside ``options`` so the plugin stays
a thin adapter.
"""

from typing import List

from oslo_config import cfg

from glance_ext.exceptions import CatalogUnavailable, RuleError
from glance_ext.injection import catalog_check
from glance_ext.injection import discovered as discovered_mod
from glance_ext.injection import options
from glance_ext.injection import rules as rules_mod

# Image Guide check severities an operator may enforce.
SEVERITIES = ("error", "warning", "info")


class Settings:
    """The options of one import, checked; and the rules, loaded.

    Raises ``RuleError`` (a configuration error) naming the option or the
    rule that is wrong.
    """

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        options.register_opts(conf)
        group = conf[options.GROUP]
        unknown = sorted(set(group.discover) -
                         set(options.DISCOVERABLE))
        if unknown:
            raise RuleError(
                "invalid option in [%s]: discover: unknown %s; known: %s"
                % (options.GROUP, ", ".join(unknown),
                   ", ".join(options.DISCOVERABLE)))
        bad = sorted(set(group.enforced_severities) - set(SEVERITIES))
        if bad:
            raise RuleError(
                "invalid option in [%s]: enforced_severities: unknown %s; "
                "known: %s" % (options.GROUP, ", ".join(bad),
                               ", ".join(SEVERITIES)))
        self.check_policy = group.check_policy
        self.enforced = frozenset(group.enforced_severities)
        self.require_inspection = group.require_inspection
        self.sbom_dir = group.sbom_dir
        self.eol_policy = group.os_eol_policy
        self.eol_warn_days = group.os_eol_warn_days
        try:
            self.ruleset = catalog_check.load(group.catalog_dir)
        except CatalogUnavailable as exc:
            raise RuleError("%s (option catalog_dir)" % exc)
        for key, value in (("hw_disk_bus", group.windows_fallback_disk_bus),
                           ("hw_vif_model",
                            group.windows_fallback_vif_model),
                           ("hw_machine_type", group.uefi_machine_type)):
            if value:
                rules_mod.check_value(self.ruleset, "option %s" % {
                    "hw_disk_bus": "windows_fallback_disk_bus",
                    "hw_vif_model": "windows_fallback_vif_model",
                    "hw_machine_type": "uefi_machine_type"}[key],
                    key, value)
        self.settings = discovered_mod.Settings(
            enabled=frozenset(group.discover),
            os_distro_style=group.os_distro_style,
            uefi_machine_type=group.uefi_machine_type or "",
            windows_disk_bus=group.windows_fallback_disk_bus,
            windows_vif_model=group.windows_fallback_vif_model)
        self.rules: List[rules_mod.Rule] = []
        static = rules_mod.static_rule(dict(group.static_properties or {}),
                                       self.ruleset)
        if static is not None:
            self.rules.append(static)
        if group.rules_file:
            self.rules += rules_mod.load_file(group.rules_file, self.ruleset)

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> "Settings":
        return cls(conf)
