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

"""Operator policy: what may be imported once the image is understood.

Kept apart from the safety checks: safety is not configurable (a file
reference is always refused), policy is.
"""

import dataclasses
from typing import Dict, FrozenSet, Optional, Tuple

from oslo_config import cfg
from oslo_utils import units

from glance_ext.inspection import options
from glance_ext.inspection.report import Report
from glance_ext.exceptions import PolicyError

# Formats the engine can detect (Glance names, plus ``gpt``).
KNOWN_FORMATS = frozenset(["raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi",
                           "iso", "gpt", "luks", "qed"])

# A detected format satisfies these claimed disk_formats. A GPT/MBR disk is
# a raw disk, so claiming raw is right; ami/aki/ari are raw payloads.
COMPATIBLE_CLAIMS = {
    "raw": {"raw", "ami", "aki", "ari"},
    "gpt": {"gpt", "raw", "ami"},
}

# What disk_format to store when correcting a claim.
STORED_AS = {"gpt": "raw"}

SIGNATURE_PROPERTIES = ("img_signature", "img_signature_hash_method",
                        "img_signature_key_type",
                        "img_signature_certificate_uuid")


@dataclasses.dataclass(frozen=True)
class Policy:
    mismatch: str = "reject"
    allowed_formats: FrozenSet[str] = frozenset(
        ["raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso", "gpt"])
    max_virtual_size: int = 16384 * units.Gi   # 0 = unlimited
    max_virtual_ratio: float = 0.0             # 0 = unlimited
    vmdk_allowed_types: Tuple[str, ...] = options.SINGLE_FILE_VMDK_TYPES
    require_signature: bool = False
    mbr_fatal_checks: FrozenSet[str] = frozenset(["boot_flag",
                                                  "pmbr_start_lba"])
    nested: str = "inspect"
    luks_max_iterations: int = options.LUKS_MAX_ITERATIONS
    read_limit: int = 2 * units.Mi
    qemu_img: str = "qemu-img"
    qemu_cpu_seconds: int = 8
    qemu_address_space: int = 1 * units.Gi
    qemu_timeout: float = 60.0

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> "Policy":
        """Build from the ``[glance_ext_validate]`` group.

        oslo.config only validates a value when it is read, so reading all
        of them here turns a typo in the file into one clear error.
        """
        group = options.GROUP
        try:
            g = getattr(conf, group)
            return cls(
                mismatch=g.format_mismatch_policy,
                allowed_formats=frozenset(g.allowed_disk_formats),
                max_virtual_size=g.max_virtual_size_gb * units.Gi,
                max_virtual_ratio=g.max_virtual_ratio,
                vmdk_allowed_types=tuple(g.vmdk_allowed_types),
                require_signature=g.require_signature,
                mbr_fatal_checks=frozenset(g.mbr_fatal_checks),
                nested=g.nested_image_policy,
                luks_max_iterations=g.luks_max_iterations,
                read_limit=g.read_limit_kb * units.Ki,
                qemu_img=g.qemu_img,
                qemu_cpu_seconds=g.qemu_cpu_seconds,
                qemu_address_space=g.qemu_address_space_mb * units.Mi,
                qemu_timeout=float(g.qemu_timeout_seconds))
        except (cfg.Error, ValueError) as exc:
            if isinstance(exc, PolicyError):
                raise
            raise PolicyError("invalid option in [%s]: %s" % (group, exc))

    def vmdk_type_allowed(self, create_type: Optional[str]) -> bool:
        allowed = {t.lower() for t in self.vmdk_allowed_types}
        return bool(create_type) and create_type.lower() in allowed


def _validate(policy: Policy) -> None:
    where = "[%s]" % options.GROUP
    if policy.mismatch not in ("reject", "correct"):
        raise PolicyError("%s format_mismatch_policy must be reject or "
                          "correct, not %r" % (where, policy.mismatch))
    unknown = set(policy.allowed_formats) - KNOWN_FORMATS
    if unknown:
        raise PolicyError("%s allowed_disk_formats has unknown format(s) %s; "
                          "known: %s" % (where, ", ".join(sorted(unknown)),
                                         ", ".join(sorted(KNOWN_FORMATS))))
    bad = [t for t in policy.vmdk_allowed_types
           if t.lower() not in {s.lower()
                                for s in options.SINGLE_FILE_VMDK_TYPES}]
    if bad:
        raise PolicyError("%s vmdk_allowed_types may only list %s; %s name "
                          "external extent files and are always refused"
                          % (where, ", ".join(options.SINGLE_FILE_VMDK_TYPES),
                             ", ".join(bad)))
    unknown = set(policy.mbr_fatal_checks) - set(options.MBR_CHECKS)
    if unknown:
        raise PolicyError("%s mbr_fatal_checks has unknown check(s) %s; "
                          "known: %s" % (where, ", ".join(sorted(unknown)),
                                         ", ".join(options.MBR_CHECKS)))
    if policy.nested not in ("inspect", "reject"):
        raise PolicyError("%s nested_image_policy must be inspect or reject, "
                          "not %r" % (where, policy.nested))


def claim_matches(detected: str, claimed: Optional[str]) -> bool:
    if not claimed:
        return True
    return claimed == detected or claimed in COMPATIBLE_CLAIMS.get(detected,
                                                                   ())


def apply(policy: Policy, report: Report,
          properties: Optional[Dict[str, str]] = None) -> None:
    """Add policy rejections to a report whose format is known."""
    detected = report.detected_format
    if detected is None:
        return
    if detected not in policy.allowed_formats:
        report.reject("format_not_allowed",
                      "%s images are not allowed here (allowed: %s)"
                      % (detected, ", ".join(sorted(policy.allowed_formats))))
    claimed = report.claimed_format
    stored = STORED_AS.get(detected, detected)
    report.disk_format = claimed if claimed else stored
    if not claim_matches(detected, claimed):
        if policy.mismatch == "correct":
            report.disk_format = stored
            report.corrected = True
            report.warn("format_corrected",
                        "image was claimed as %s but is %s; disk_format set "
                        "to %s" % (claimed, detected, stored))
        else:
            report.reject("format_mismatch",
                          "image content is %s but disk_format %s was "
                          "claimed; import it with disk_format=%s"
                          % (detected, claimed, stored))
    vsize = report.virtual_size or 0
    if policy.max_virtual_size and vsize > policy.max_virtual_size:
        report.reject("virtual_size_too_large",
                      "virtual size %d bytes exceeds the limit of %d GiB"
                      % (vsize, policy.max_virtual_size // units.Gi))
    if (policy.max_virtual_ratio and report.file_size
            and vsize / report.file_size > policy.max_virtual_ratio):
        report.reject("virtual_ratio_too_large",
                      "virtual size is %.0f times the file size (limit %g)"
                      % (vsize / report.file_size, policy.max_virtual_ratio))
    if policy.require_signature:
        props = properties or {}
        missing = [p for p in SIGNATURE_PROPERTIES if not props.get(p)]
        if missing:
            report.reject("signature_missing",
                          "image signature properties are required; missing: "
                          "%s" % ", ".join(missing))
