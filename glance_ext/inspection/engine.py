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

"""The inspection engine: one call decides whether an image may be imported.

Order matters and is the security argument:
1. bounded positional read + oslo format_inspector (``detection``);
2. header checks for every format that can reference another file
   (``structure`` + oslo's safety checks);
3. only if nothing references a file: ``qemu-img info`` under prlimit and
   the cross-check (``qemu_check``);
4. the guest payload of a container format, if it is itself an image;
5. operator policy (``policy``).
Messages are fixed strings about the image; no host path and nothing qemu
printed reaches them, so a rejection never reveals whether a path exists.
"""

import functools
import importlib.metadata
import shutil
import tempfile
import time
from typing import Dict, Optional

from oslo_log import log as logging
from oslo_utils.imageutils import format_inspector as fi
from oslo_utils import units

import glance_ext
from glance_ext import exceptions
from glance_ext.inspection import detection
from glance_ext.inspection import policy as policy_mod
from glance_ext.inspection import qemu_check
from glance_ext.inspection.report import Report
from glance_ext.inspection import structure
from glance_ext.qemu import formats
from glance_ext.qemu import probe
from glance_ext.qemu import runner

LOG = logging.getLogger(__name__)

ENGINE_REVISION = "2"
# Formats whose guest data can itself hold an image.
CONTAINERS = ("qcow2", "vmdk", "vhd", "vhdx", "vdi")
IMAGE_FORMATS = CONTAINERS + ("qed", "luks")
NESTED_BYTES = 1 * units.Mi

# oslo safety-check names -> our code and our own message; oslo's failure
# text is never passed on. None: replaced by our own check (oslo's qcow2
# feature check rejects valid extended_l2 images; its single MBR check
# cannot be relaxed per problem; the LUKS passphrase check only applies when
# a key is given; structure.check_luks checks the version). A mapped check
# whose code our own check already reported adds nothing: ours says more.
OSLO_CHECK_CODES = {
    "backing_file": ("backing_file", structure.BACKING_MSG),
    "data_file": ("data_file", structure.DATA_FILE_MSG),
    "unknown_features": None,
    "mbr": None,
    "passphrase": None,
    "version": None,
    "banned": ("banned_format", "%s images are not allowed"),
    "descriptor": ("vmdk_descriptor", "VMDK descriptor is not allowed"),
    "footer": ("vmdk_footer", "VMDK streamOptimized footer is invalid"),
}


@functools.lru_cache(maxsize=8)
def _qemu_version(binary: str) -> str:
    try:
        return runner.QemuImg(binary).version()
    except runner.QemuImgError:
        return "unavailable"


def engine_version(qemu_binary: str = "qemu-img") -> str:
    return "%s/r%s oslo.utils-%s qemu-img-%s" % (
        glance_ext.__version__, ENGINE_REVISION,
        importlib.metadata.version("oslo.utils"), _qemu_version(qemu_binary))


class Engine:
    """Inspect images under one policy."""

    def __init__(self, policy: Optional[policy_mod.Policy] = None,
                 work_dir: Optional[str] = None) -> None:
        self.policy = policy or policy_mod.Policy()
        self.work_dir = work_dir
        self.qemu = runner.QemuImg(self.policy.qemu_img,
                                   limits=qemu_check.limits_for(self.policy))

    def inspect(self, path: str, claimed_format: Optional[str] = None,
                container_format: Optional[str] = None,
                properties: Optional[Dict[str, str]] = None) -> Report:
        """Inspect ``path``. Raises only OSError (cannot read the file) and
        the qemu-img errors that are no verdict on the image (missing,
        killed from outside, cancelled); every image problem becomes a
        rejection in the report."""
        start = time.monotonic()
        report = Report(claimed_format=claimed_format,
                        container_format=container_format,
                        engine_version=engine_version(self.policy.qemu_img))
        try:
            self._inspect(path, report, properties)
        except (OSError, exceptions.ToolUnavailable, exceptions.ToolFailed,
                exceptions.Interrupted):
            raise
        except Exception:
            LOG.exception("inspection engine error")
            report.reject("internal", "the image could not be inspected")
        report.elapsed_seconds = time.monotonic() - start
        return report

    def _inspect(self, path: str, report: Report,
                 properties: Optional[Dict[str, str]]) -> None:
        det = detection.detect(path, self.policy.read_limit)
        report.bytes_read = det.bytes_read
        report.file_size = det.file_size
        # qemu's probe sees only the first 2 KiB, which detection has read.
        guess = probe.probe(det.head, det.file_size, path)
        report.qemu_probe = guess.driver
        detected, inspector = classify(det, report, self.policy)
        report.detected_format = detected
        if detected is None:
            return
        check_probe(det, guess, detected, report)
        check_format(det, detected, inspector, self.policy, report)
        if detected not in policy_mod.KNOWN_FORMATS:
            return
        report.virtual_size = _inspector_size(det, detected, inspector)
        # qemu-img info opens LUKS without a key (it reads the header only,
        # no PBKDF2), so LUKS is cross-checked like the others.
        if not report.rejections and detected != "qed":
            info = qemu_check.qemu_info(self.qemu, path, detected, report)
            if info is not None:
                qemu_check.cross_check(info, path, detected,
                                       report.virtual_size or 0,
                                       self.policy, report)
        if not report.rejections and detected in CONTAINERS:
            self._inspect_payload(path, detected, report)
        policy_mod.apply(self.policy, report, properties)

    def _inspect_payload(self, path: str, outer: str, report: Report) -> None:
        size = min(NESTED_BYTES, report.virtual_size or 0)
        # Whole 64 KiB blocks: a smaller block makes qemu decompress the
        # same compressed grain/cluster again for every block.
        block = 64 * units.Ki if size >= 64 * units.Ki else 512
        size -= size % block
        if size <= 0:
            return
        tmp = tempfile.mkdtemp(prefix="glance_ext_nested_", dir=self.work_dir)
        try:
            payload = tmp + "/payload"
            try:
                self.qemu.dd_head(path, outer, payload, size,
                                  block_size=block)
            except runner.QemuImgError as exc:
                LOG.debug("qemu-img dd failed (%s): %s", exc, exc.stderr)
                if exc.kind in ("missing", "killed", "cancelled"):
                    raise
                report.reject("qemu_open_failed", "qemu-img cannot read the "
                              "guest data of the %s image" % outer)
                return
            inner_det = detection.detect(payload, self.policy.read_limit)
            inner_report = Report()
            inner, inspector = classify(inner_det, inner_report, self.policy)
            # After a conversion to raw the guest data is the whole file,
            # and then qemu's probe sees exactly these bytes.
            guess = probe.probe(inner_det.head, inner_det.file_size)
            candidates = set(inner_det.malformed) | set(inner_det.unreachable)
            if inner in IMAGE_FORMATS:
                name = inner
            elif candidates & set(IMAGE_FORMATS):
                name = sorted(candidates & set(IMAGE_FORMATS))[0]
            elif guess.driver != "raw":
                name = probed_name(guess.driver)
            else:
                return
            report.nested_format = name
            prefix = "nested %s inside %s: " % (name, outer)
            if self.policy.nested == "reject":
                report.reject("nested_image", prefix + "images inside "
                              "images are not allowed")
                return
            if inner is not None:
                check_probe(inner_det, guess, inner, inner_report,
                            nested=True)
            if inner in IMAGE_FORMATS:
                check_format(inner_det, inner, inspector, self.policy,
                             inner_report, prefix=prefix)
            for finding in inner_report.rejections:
                if finding.code == "archive":
                    continue    # compressed guest data is not an image
                msg = finding.message
                if not msg.startswith(prefix):
                    msg = prefix + msg
                report.reject(finding.code, msg)
            if not report.rejections:
                report.warn("nested_image", "the %s image contains a %s "
                            "image" % (outer, name))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def classify(det: detection.Detection, report: Report,
             policy: policy_mod.Policy):
    """Decide the format; reject malformed, unreachable and polyglot files.

    Returns (format name or None, matching inspector or None).
    """
    for name in sorted(det.malformed):
        report.reject("malformed", "%s header is malformed: %s"
                      % (name, structure.malformed_detail(det, name)))
    for name in det.unreachable:
        report.reject("malformed", "%s structures lie beyond the %d KiB "
                      "inspected or past the end of the file"
                      % (name, policy.read_limit // units.Ki))
    if det.malformed or det.unreachable:
        return None, None
    by_name = {str(m): m for m in det.matches}
    names = set(by_name)
    if names == {"iso", "gpt"}:
        report.warn("hybrid_iso", "hybrid ISO with an MBR/GPT partition "
                    "table; classified as iso")
        return "iso", by_name["iso"]
    if len(names) > 1:
        report.reject("polyglot", "image matches several formats (%s): "
                      "polyglot images are not allowed"
                      % ", ".join(sorted(names)))
        return None, None
    if names:
        name = names.pop()
        return name, by_name[name]
    if structure.fixed_vhd_size(det) is not None:
        return "vhd", None
    if det.archive:
        report.reject("archive", "the data is %s-compressed, not a disk "
                      "image; decompress it and import the image inside"
                      % det.archive)
        return det.archive, None
    return "raw", None


def probed_name(driver: str) -> str:
    """The name a rejection uses for a qemu driver: Glance's where this
    engine knows the format (``vpc`` is ``vhd``), qemu's otherwise."""
    glance_name = formats.to_glance(driver)
    if glance_name in policy_mod.KNOWN_FORMATS:
        return glance_name
    return structure.foreign_format_name(driver)


def check_probe(det: detection.Detection, guess: probe.ProbeResult,
                detected: str, report: Report, nested: bool = False) -> None:
    """Refuse a file that qemu would take for another format.

    Two ways: qemu's own probe (what any tool running qemu without ``-f``
    opens) names another driver than the detected format's, or the file
    is a format qemu opens that this engine does not accept (Glance stores
    such a file as raw; it stays that other format for every consumer that
    probes or is told). A probe answer of ``raw`` never rejects: raw has no
    metadata, so qemu then reads the bytes Glance stores and opens nothing
    else (a fixed VHD, whose only header is at the end, probes as raw).
    """
    driver = guess.driver
    uploaded = report.claimed_format or detected
    if driver != "raw" and formats.to_glance(driver) not in \
            policy_mod.KNOWN_FORMATS:
        name = structure.foreign_format_name(driver)
        if nested:
            report.reject("foreign_format", "qemu's format probe reads the "
                          "guest data as %s, a format this validation does "
                          "not accept" % name)
        else:
            report.reject("foreign_format", "%s image uploaded as %s: qemu's "
                          "format probe opens this file as %s, a format this "
                          "validation does not accept; convert it (qemu-img "
                          "convert -f %s -O qcow2) and upload the result"
                          % (name, uploaded, driver, driver))
    elif driver != "raw" and not formats.same_driver(detected, driver):
        seen = probed_name(driver)
        report.reject("probe_mismatch", "qemu's format probe reads %s as %s, "
                      "not %s: a tool that opens it without naming the "
                      "format would get a %s image; polyglot images are not "
                      "allowed" % ("the guest data" if nested else
                                   "this %s image" % detected,
                                   seen, detected, seen))
    if not nested and detected in ("raw", "iso", "gpt") and \
            structure.dmg_trailer(det):
        report.reject("foreign_format", "dmg image uploaded as %s: the file "
                      "ends with a dmg (UDIF) trailer, which qemu opens as a "
                      "dmg image; convert it (qemu-img convert -f dmg -O "
                      "qcow2) and upload the result" % uploaded)


def check_format(det: detection.Detection, detected: str,
                 inspector: Optional[fi.FileInspector],
                 policy: policy_mod.Policy, report: Report,
                 prefix: str = "") -> None:
    """Our header checks, then oslo's safety checks, for one format."""
    if detected == "qcow2":
        structure.check_qcow2(det.head, report, prefix)
    elif detected == "vmdk":
        structure.check_vmdk(det, policy, report, prefix)
    elif detected == "vhd":
        footer = det.head[:512] if inspector is not None else det.tail[-512:]
        structure.check_vhd_footer(footer, report, prefix)
    elif detected == "vhdx":
        structure.check_vhdx(det, report, prefix)
    elif detected == "vdi":
        structure.check_vdi(det.head, report, prefix)
    elif detected == "luks":
        structure.check_luks(det, policy, report)
    elif detected == "gpt":
        structure.check_mbr(det.head, policy, report)
    if inspector is None:
        return
    try:
        inspector.safety_check()
    except fi.SafetyCheckFailed as exc:
        for check, failure in exc.failures.items():
            LOG.debug("oslo %s check %s failed: %s", detected, check, failure)
            mapped = OSLO_CHECK_CODES.get(check.replace("inner_", ""), ())
            if mapped is None:
                continue
            if not mapped:
                report.reject("unsafe", prefix + "%s safety check %s failed"
                              % (detected, check))
                continue
            code, template = mapped
            if code in report.codes:
                continue
            message = template % detected if "%s" in template else template
            report.reject(code, prefix + message)
    except fi.ImageFormatError as exc:
        LOG.debug("%s safety check could not run: %s", detected, exc)
        report.reject("malformed", prefix + "%s structure is incomplete or "
                      "invalid" % detected)


def _inspector_size(det: detection.Detection, detected: str,
                    inspector: Optional[fi.FileInspector]) -> int:
    if detected == "vhd" and inspector is None:
        return structure.fixed_vhd_size(det) or 0
    if detected == "luks":
        return structure.luks_virtual_size(det)
    if detected in ("raw", "gpt", "iso") or inspector is None:
        return det.file_size
    try:
        return int(inspector.virtual_size)
    except Exception:
        return 0
