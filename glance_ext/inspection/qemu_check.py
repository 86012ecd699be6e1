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

"""Cross-check the inspector's verdict with ``qemu-img info``.

qemu is what nova will eventually use to open the image, so its reading is
the one that matters; the inspector decides first because qemu must never be
pointed at an image that names other files (``info`` opens a qcow2 data file
or VMDK extents, which both leaks host-path existence and reads host files).
qemu's stderr can contain host paths: it goes to the debug log only.
"""

import os
from typing import Any, Dict, Optional

from oslo_log import log as logging

from glance_ext.inspection.policy import Policy
from glance_ext.inspection.report import Report
from glance_ext.inspection import structure
from glance_ext.qemu import formats
from glance_ext.qemu import runner

LOG = logging.getLogger(__name__)

# Inspector and qemu must agree on the virtual size for these. (VHD: qemu
# derives the size from CHS geometry for some creators; raw-like formats:
# qemu reports the file size.)
SIZE_MUST_AGREE = ("qcow2", "vmdk", "vhdx", "vdi", "luks")


def limits_for(policy: Policy) -> runner.Limits:
    return runner.Limits(cpu_seconds=policy.qemu_cpu_seconds,
                         address_space_bytes=policy.qemu_address_space,
                         timeout_seconds=policy.qemu_timeout)


def qemu_info(qemu: runner.QemuImg, path: str, detected: str,
              report: Report) -> Optional[Dict[str, Any]]:
    """Run ``qemu-img info``; on failure add a rejection and return None."""
    report.qemu_ran = True
    try:
        return qemu.info(path, detected)
    except runner.QemuImgError as exc:
        LOG.debug("qemu-img info failed (%s): %s", exc, exc.stderr)
        if exc.kind in ("missing", "killed", "cancelled"):
            # Not a verdict on the image: the host could not run qemu-img,
            # or someone stopped it.
            raise
        if exc.kind == "limit":
            report.reject("resource_limit", "qemu-img exceeded its resource "
                          "limits (%ds CPU, %d MiB) reading the image"
                          % (qemu.limits.cpu_seconds,
                             qemu.limits.address_space_bytes >> 20))
        elif exc.kind == "timeout":
            report.reject("resource_limit", "qemu-img did not finish reading "
                          "the image within %ss"
                          % qemu.limits.timeout_seconds)
        else:
            report.reject("qemu_open_failed", "qemu-img cannot open the image "
                          "as %s" % detected)
        return None


def cross_check(info: Dict[str, Any], path: str, detected: str,
                inspector_size: int, policy: Policy, report: Report) -> None:
    reported = info.get("format")
    if not formats.same_driver(detected, reported):
        report.reject("format_disagreement", "qemu-img reads the image as %s, "
                      "the inspector as %s"
                      % (formats.to_glance(reported), detected))
        return
    if any(k in info for k in ("backing-filename", "full-backing-filename",
                               "backing-filename-format")):
        report.reject("backing_file", "%s backing file is not allowed"
                      % detected)
    data = (info.get("format-specific") or {}).get("data") or {}
    if data.get("data-file") or data.get("data-file-raw"):
        report.reject("data_file", structure.DATA_FILE_MSG)
    if data.get("corrupt"):
        report.reject("corrupt", "qemu-img reports the image as corrupt")
    if info.get("encrypted") and detected != "luks":
        report.reject("encrypted", "encrypted %s images are not allowed"
                      % detected)
    if detected == "vmdk":
        create_type = data.get("create-type")
        if not policy.vmdk_type_allowed(create_type):
            report.reject("vmdk_create_type", "VMDK createType %r is not "
                          "allowed (allowed: %s)"
                          % (create_type, ", ".join(policy.vmdk_allowed_types)))
        real = os.path.realpath(path)
        extents = data.get("extents") or []
        if len(extents) != 1 or any(
                os.path.realpath(e.get("filename", "")) != real
                for e in extents):
            report.reject("extent_reference", "VMDK extent references "
                          "another file")
    if detected == "luks":
        _cross_check_luks(data, policy, report)
    vsize = info.get("virtual-size")
    if not isinstance(vsize, int) or vsize < 0:
        report.reject("malformed", "qemu-img reports no virtual size")
        return
    if detected in SIZE_MUST_AGREE and inspector_size and \
            inspector_size != vsize:
        report.reject("size_disagreement", "the format inspector (%d bytes) "
                      "and qemu-img (%d bytes) disagree on the virtual size"
                      % (inspector_size, vsize))
    report.virtual_size = vsize


def _cross_check_luks(data: Dict[str, Any], policy: Policy,
                      report: Report) -> None:
    """qemu's reading of the PBKDF2 counts, against the same limit.

    The header check has bounded them already; this catches a header qemu
    parses differently from us.
    """
    limit = policy.luks_max_iterations
    digest = data.get("master-key-iters")
    if isinstance(digest, int) and digest > limit:
        report.reject("resource_limit", "LUKS master key digest uses %d "
                      "PBKDF2 iterations (limit %d)" % (digest, limit))
    for slot, info in enumerate(data.get("slots") or []):
        iters = info.get("iters")
        if info.get("active") and isinstance(iters, int) and iters > limit:
            report.reject("resource_limit", "LUKS key slot %d uses %d PBKDF2 "
                          "iterations (limit %d)" % (slot, iters, limit))
