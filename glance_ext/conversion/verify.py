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

"""Checking a conversion's output before any store sees it.

qemu-img writes whatever the guest data says; if the source hid an image
inside its payload, a raw output *is* that inner image. So the output goes
through the same inspection engine as an upload (format and safety), its
virtual size must be the source's, and optionally ``qemu-img compare``
proves the guest-visible bytes are equal.
"""

import dataclasses
from typing import Optional

from oslo_log import log as logging

from glance_ext.inspection import engine as inspection_engine
from glance_ext.inspection import policy as policy_mod
from glance_ext.inspection.report import Report
from glance_ext.qemu import runner
from glance_ext.exceptions import VerificationFailed

LOG = logging.getLogger(__name__)

# What the inspection engine may call an output of each target format. A
# raw output of a partitioned disk or an ISO is still those bytes.
ACCEPTABLE_DETECTIONS = {
    "raw": ("raw", "gpt", "iso"),
}
OUTPUT_POLICY_FORMATS = frozenset(["raw", "qcow2", "vmdk", "vhd", "vhdx",
                                   "vdi", "iso", "gpt"])


@dataclasses.dataclass
class Verification:
    detected_format: str
    virtual_size: int
    compared: bool
    report: Optional[Report] = None


def output_policy(base: policy_mod.Policy) -> policy_mod.Policy:
    """The validate policy for outputs: same safety and qemu limits, but
    any output format allowed and no size policy (the source passed it)."""
    return dataclasses.replace(
        base, allowed_formats=OUTPUT_POLICY_FORMATS, mismatch="reject",
        max_virtual_size=0, max_virtual_ratio=0.0, require_signature=False)


def sector_round(size: int) -> int:
    """qemu stores virtual sizes in 512-byte sectors; a raw source of odd
    length becomes the next multiple of 512."""
    return -(-size // 512) * 512


def verify(qemu: runner.QemuImg, base_policy: policy_mod.Policy,
           src: str, src_format: str, dst: str, target_format: str,
           source_virtual_size: int, compare: bool,
           compare_limits: Optional[runner.Limits] = None) -> Verification:
    engine = inspection_engine.Engine(output_policy(base_policy))
    engine.qemu = qemu       # the caller's runner and limits
    report = engine.inspect(dst, None, "bare")
    detected = report.detected_format or "unknown"
    allowed = ACCEPTABLE_DETECTIONS.get(target_format, (target_format,))
    if not report.accepted:
        raise VerificationFailed(
            "the converted image failed inspection: %s" % report.reason())
    if detected not in allowed:
        raise VerificationFailed(
            "the converted image is %s, not %s: the source's guest data is "
            "itself an image" % (detected, target_format))
    # The engine's qemu-img cross-check has confirmed this size.
    vsize = int(report.virtual_size if report.virtual_size is not None
                else -1)
    if vsize not in (source_virtual_size, sector_round(source_virtual_size)):
        raise VerificationFailed(
            "the converted image has a virtual size of %d bytes but the "
            "source has %d" % (vsize, source_virtual_size))
    compared = False
    if compare:
        if not qemu.compare(src, src_format, dst, target_format,
                            limits=compare_limits):
            raise VerificationFailed("qemu-img compare found the converted "
                                     "image's data differs from the source")
        compared = True
    return Verification(detected, vsize, compared, report)
