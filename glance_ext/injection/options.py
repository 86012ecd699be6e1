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

"""Options of the inject plugin: one group, ``[glance_ext_inject]``.

Glance reads them from glance-image-import.conf (the plugin registers the
group when Glance loads it). They are read at each import, so a bad value
fails that import with a message naming it instead of silently importing
without properties.
"""

from typing import List, Tuple

from oslo_config import cfg

GROUP = "glance_ext_inject"

# What the plugin can discover; each can be switched off in ``discover``.
DISCOVERABLE = ("os_type", "os_distro", "os_version", "hw_architecture",
                "hw_firmware_type", "hw_machine_type", "hw_qemu_guest_agent",
                "checks", "windows_drivers", "packages")

inject_opts = [
    cfg.ListOpt("discover", default=list(DISCOVERABLE),
                help="Properties discovered from the guest and set on the "
                     "image. Known: %s. 'checks' records the Image Guide "
                     "check results as glance_ext_inject_check_<id>; "
                     "'windows_drivers' gives Windows guests without virtio "
                     "drivers the disk bus and NIC model they can boot "
                     "with; 'packages' records the package inventory's "
                     "summary (glance_ext_inject_packages, "
                     "glance_ext_inject_kernel, "
                     "glance_ext_inject_sbom_sha256)."
                     % ", ".join(DISCOVERABLE)),
    cfg.StrOpt("os_distro_style", default="osinfo",
               choices=[("osinfo", "the libosinfo short-id nova resolves, "
                                   "e.g. ubuntu22.04, rhel9.1, win2k22"),
                        ("family", "the family name of Glance's "
                                   "documentation, e.g. ubuntu, rhel, "
                                   "windows")],
               help="How os_distro is written."),
    cfg.StrOpt("uefi_machine_type", default="q35",
               help="hw_machine_type set on x86_64 guests that boot only "
                    "with UEFI (nova's secure boot and most OVMF builds need "
                    "q35). aarch64 guests always get 'virt'. Empty: never "
                    "set hw_machine_type."),
    cfg.StrOpt("check_policy", default="record",
               choices=[("record", "record the results as image properties"),
                        ("warn", "record them, log a warning and set "
                                 "glance_ext_inject_warning when a check "
                                 "fails"),
                        ("enforce", "reject the import when a check of an "
                                    "enforced severity fails; the failed "
                                    "checks are in the task message")],
               help="Policy for the Image Guide checks."),
    cfg.ListOpt("enforced_severities", default=["error"],
                help="Severities (error, warning, info) whose failed checks "
                     "reject the import under check_policy = enforce, or "
                     "are warned about under check_policy = warn."),
    cfg.BoolOpt("require_inspection", default=False,
                help="Reject the import when the guest cannot be inspected "
                     "(unreadable filesystem, unknown OS, a limit hit). "
                     "Off: such images import with what could be "
                     "discovered and the reason in "
                     "glance_ext_inject_inspection_error."),
    cfg.DictOpt("static_properties", default={},
                help="Properties set on every imported image, e.g. "
                     "hw_rng_model:virtio,hw_video_model:virtio. Like a rule "
                     "without conditions; a property the user set is kept."),
    cfg.StrOpt("rules_file",
               help="YAML or JSON file with conditional rules (see "
                    "docs/inject.md). Read at each import; an invalid rule "
                    "fails the import with 'configuration error: rule N "
                    "...'."),
    cfg.StrOpt("catalog_dir",
               help="Metadefs catalog every value is checked against before "
                    "it is set. Default: the catalog shipped with glance_ext "
                    "(metadefs/)."),
    cfg.StrOpt("sbom_dir",
               help="Directory where the CycloneDX SBOM of every imported "
                    "image is written, as <image id>.cdx.json (the file "
                    "whose sha256 is glance_ext_inject_sbom_sha256). It "
                    "must exist and be writable by glance-api; a write "
                    "failure fails the import with a message naming the "
                    "directory. Unset: no file is written."),
    cfg.StrOpt("os_eol_policy", default="record",
               choices=[("record", "record the OS end-of-life date as "
                                   "glance_ext_inject_os_eol and the "
                                   "verdict as "
                                   "glance_ext_inject_check_os_eol"),
                        ("warn", "record them, log a warning and set "
                                 "glance_ext_inject_warning when the OS is "
                                 "past or within os_eol_warn_days of its "
                                 "end of life"),
                        ("enforce", "reject the import of an OS past its "
                                    "end of life (the date is in the "
                                    "reason); warn within "
                                    "os_eol_warn_days of it")],
               help="Policy for the os_eol check: the end-of-life date of "
                    "the guest's OS version from osinfo-db "
                    "([glance_ext_guest] osinfo_db_dir). Under warn or "
                    "enforce a missing osinfo-db fails the import as a "
                    "configuration error (install osinfo-db), never as a "
                    "fault of the image."),
    cfg.IntOpt("os_eol_warn_days", default=90, min=0,
               help="Days before an OS's end of life from which the os_eol "
                    "check warns (warn and enforce policies)."),
    cfg.StrOpt("windows_fallback_disk_bus", default="sata",
               help="hw_disk_bus for Windows guests without virtio storage "
                    "drivers (viostor/vioscsi)."),
    cfg.StrOpt("windows_fallback_vif_model", default="e1000",
               help="hw_vif_model for Windows guests without the virtio "
                    "network driver (netkvm)."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(inject_opts, group=GROUP)


def list_opts() -> List[Tuple[str, list]]:
    return [(GROUP, inject_opts)]
