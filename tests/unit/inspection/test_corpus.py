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

"""The engine over the whole generated corpus: every class of anchors.md
gets the expected verdict and a rejection code that names the problem."""

import pytest

from glance_ext.inspection.engine import Engine
from glance_ext.inspection.policy import Policy
from glance_ext.testing import corpus as generate

CASES = generate.ensure()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case(case):
    report = Engine(Policy(**case.policy)).inspect(
        case.file, case.claimed, case.container)
    assert report.verdict == case.expect, report.to_dict()
    if case.expect == "rejected":
        assert set(case.codes) & set(report.codes), report.to_dict()
        assert report.reason()
    else:
        assert report.rejections == []
        assert report.virtual_size and report.virtual_size > 0


def test_corpus_covers_every_required_class():
    required = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11",
                "12", "13", "14", "15", "16", "17", "19", "20", "21",
                "foreign", "probe"}
    covered = set()
    for case in CASES:
        covered.update(case.anchor.split("/"))
    assert required <= covered, required - covered


def test_backing_file_is_refused_before_qemu_runs(corpus):
    report = Engine().inspect(corpus["qcow2_backing_abs"].file, "qcow2")
    assert report.qemu_ran is False
    assert "qcow2 backing file is not allowed" in report.reason()


@pytest.mark.parametrize("existing,missing", [
    ("qcow2_backing_abs", "qcow2_backing_missing"),
    ("vmdk_flat_extent_existing", "vmdk_flat_extent_missing"),
])
def test_rejection_never_reveals_whether_a_host_path_exists(
        corpus, existing, missing):
    a = Engine().inspect(corpus[existing].file, corpus[existing].claimed)
    b = Engine().inspect(corpus[missing].file, corpus[missing].claimed)
    assert (a.verdict, a.codes, a.reason()) == (b.verdict, b.codes,
                                                b.reason())
    for path in ("/etc/passwd", "/nonexistent"):
        assert path not in a.reason() and path not in b.reason()


def test_fixed_vhd_is_classified_as_vhd(corpus):
    report = Engine().inspect(corpus["vhd_fixed"].file, "vhd")
    assert report.detected_format == "vhd" and report.accepted


def test_hybrid_iso_is_iso_with_warning(corpus):
    report = Engine().inspect(corpus["iso_hybrid_gpt"].file, "iso")
    assert report.detected_format == "iso"
    assert "hybrid_iso" in [w.code for w in report.warnings]


def test_correct_policy_sets_disk_format_and_records_claim(corpus):
    case = corpus["vmdk_claimed_qcow2_corrected"]
    report = Engine(Policy(mismatch="correct")).inspect(case.file, "qcow2")
    assert report.accepted and report.corrected
    assert report.disk_format == "vmdk"
    props = report.to_properties()
    assert props["glance_ext_validate_claimed_format"] == "qcow2"
    assert props["glance_ext_validate_detected_format"] == "vmdk"


def test_reject_policy_says_what_to_claim(corpus):
    report = Engine().inspect(corpus["qcow2_claimed_raw"].file, "raw")
    assert "is qcow2" in report.reason()
    assert "disk_format=qcow2" in report.reason()


def test_nested_clean_image_is_recorded(corpus):
    report = Engine().inspect(corpus["nested_clean_qcow2_in_qcow2"].file,
                              "qcow2")
    assert report.accepted
    assert report.nested_format == "qcow2"
    assert report.to_properties()["glance_ext_validate_nested_format"] == \
        "qcow2"


def test_nested_unsafe_image_message_names_both_layers(corpus):
    report = Engine().inspect(corpus["nested_qcow2_backing_in_qcow2"].file,
                              "qcow2")
    assert "nested qcow2 inside qcow2: qcow2 backing file is not allowed" \
        in report.reason()


def test_signature_properties_required(corpus):
    case = corpus["good_qcow2"]
    engine = Engine(Policy(require_signature=True))
    report = engine.inspect(case.file, "qcow2", properties={
        "img_signature": "x", "img_signature_hash_method": "SHA-256"})
    assert report.codes == ["signature_missing"]
    assert "img_signature_key_type" in report.reason()
    full = {"img_signature": "x", "img_signature_hash_method": "SHA-256",
            "img_signature_key_type": "RSA-PSS",
            "img_signature_certificate_uuid": "c"}
    assert engine.inspect(case.file, "qcow2", properties=full).accepted


def test_allowed_formats_policy(corpus):
    report = Engine(Policy(allowed_formats=frozenset(["raw"]))).inspect(
        corpus["good_qcow2"].file, "qcow2")
    assert report.codes == ["format_not_allowed"]


def test_properties_use_one_prefix(corpus):
    report = Engine().inspect(corpus["good_qcow2"].file, "qcow2")
    props = report.to_properties()
    assert all(k.startswith("glance_ext_validate_") for k in props)
    assert props["glance_ext_validate_verdict"] == "accepted"
    assert props["glance_ext_validate_detected_format"] == "qcow2"
    assert props["glance_ext_validate_virtual_size"] == str(1024 * 1024)
    assert "oslo.utils" in props["glance_ext_validate_engine_version"]


def test_no_rejection_passes_library_text_through():
    # oslo.utils exception texts are never copied (some are unformatted
    # templates such as "Unsupported format version {int(ver)}").
    oslo_texts = ("Invalid extent filenames found", "No extents found",
                  "Invalid VMDK descriptor data", "Unsupported format",
                  "Region count is", "Signature KDMV not found",
                  "Footer marker is invalid", "is not supported'")
    for case in CASES:
        report = Engine(Policy(**case.policy)).inspect(
            case.file, case.claimed, case.container)
        for finding in report.rejections + report.warnings:
            assert "{" not in finding.message, (case.name, finding)
            assert not any(t in finding.message for t in oslo_texts), \
                (case.name, finding)


@pytest.mark.parametrize("name,text", [
    ("vmdk_bad_version",
     "vmdk header is malformed: VMDK version 7 is not supported (1, 2 or 3)"),
    ("vmdk_desc_offset", "the VMDK descriptor does not start at sector 1"),
    ("vhdx_region_count",
     "the VHDX region table has 5000 entries (limit 2047)"),
    ("vhdx_metadata_count",
     "VHDX metadata table has 4000 entries (limit 2047)"),
    ("vmdk_slash_extent", "VMDK extent names a path"),
    ("vmdk_no_extent", "VMDK descriptor names no extent"),
    ("vmdk_unknown_access", "VMDK descriptor has a line that is neither"),
    ("vmdk_stream_eos_marker",
     "VMDK streamOptimized end-of-stream marker is invalid"),
    ("vmdk_stream_footer_version",
     "VMDK streamOptimized footer and header differ in their version"),
    ("vmdk_stream_footer_points_to_footer",
     "VMDK streamOptimized footer points to another footer"),
    ("luks_v2", "LUKS version 2 is not supported"),
])
def test_messages_are_our_own_words(corpus, name, text):
    case = corpus[name]
    report = Engine(Policy(**case.policy)).inspect(case.file, case.claimed)
    assert text in report.reason(), report.reason()


@pytest.mark.parametrize("name", ["luks_default_qemu_img",
                                  "luks_odd_length"])
def test_default_qemu_img_luks_passes_with_its_real_size(corpus, name):
    case = corpus[name]
    report = Engine(Policy(**case.policy)).inspect(case.file, "luks")
    assert report.accepted, report.reason()
    # qemu-img info opens LUKS without a key: the cross-check runs and
    # agrees on the guest size (file minus payload offset), not oslo's
    # negative figure.
    assert report.qemu_ran
    assert report.virtual_size == 1024 * 1024
    assert Policy().luks_max_iterations == 12000000


def test_luks_limit_applies_to_every_active_slot(corpus):
    case = corpus["luks_default_qemu_img"]
    report = Engine(Policy(allowed_formats=frozenset(["luks"]),
                           luks_max_iterations=1000)).inspect(case.file,
                                                              "luks")
    assert "LUKS key slot 0 uses" in report.reason()
    assert "LUKS master key digest uses" in report.reason()
    assert report.qemu_ran is False
