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

"""glance_ext.qemu.probe against qemu-img's own probe.

Every rule of qemu 7.2's drivers on hand-built buffers, every corpus file
where asking qemu is safe (glance_ext/testing/qemu_oracle.py), and the
tie order; then what the engine does with the answer: polyglots and formats
this engine does not accept are refused with both formats named, and the
formats of that class are real (qemu-img opens each with ``-f``).
"""

import os
import struct

import pytest

from glance_ext.inspection import detection
from glance_ext.inspection.engine import Engine
from glance_ext.qemu import probe
from glance_ext.qemu import runner
from glance_ext.testing import corpus as generate
from glance_ext.testing import qemu_oracle

CASES = generate.ensure()
CLOOP = generate.CLOOP_V2_MAGIC


def _buf(*parts, size=4096):
    """``(offset, bytes)`` parts laid into a zero buffer."""
    data = bytearray(size)
    for offset, chunk in parts:
        data[offset:offset + len(chunk)] = chunk
    return bytes(data)


VDI_SIG = (0x40, struct.pack("<I", 0xBEDA107F))
BOCHS = [(0, b"Bochs Virtual HD Image"), (32, b"Redolog"), (48, b"Growing"),
         (64, struct.pack("<I", 0x00020000))]

# (name, buffer, file name, expected driver)
RULES = [
    ("empty", b"", "x.img", "raw"),
    ("zeros", _buf(), "x.img", "raw"),
    ("qcow2 v2", _buf((0, b"QFI\xfb\0\0\0\2")), "x.img", "qcow2"),
    ("qcow2 v4", _buf((0, b"QFI\xfb\0\0\0\4")), "x.img", "qcow2"),
    ("qcow v1", _buf((0, b"QFI\xfb\0\0\0\1")), "x.img", "qcow"),
    ("qcow v0", _buf((0, b"QFI\xfb\0\0\0\0")), "x.img", "raw"),
    ("qcow2 magic in 8 bytes", b"QFI\xfb\0\0\0\3", "x.img", "qcow2"),
    ("qed", _buf((0, b"QED\0")), "x.img", "qed"),
    ("vmdk4", _buf((0, b"KDMV")), "x.img", "vmdk"),
    ("vmdk3", _buf((0, b"COWD")), "x.img", "vmdk"),
    ("vmdk text", b"version=1\n", "x.img", "vmdk"),
    ("vmdk text v3 crlf", b"version=3\r\n", "x.img", "vmdk"),
    ("vmdk text v4", b"version=4\n", "x.img", "raw"),
    ("vmdk text comments", b"# a\n#b\nversion=2\n", "x.img", "vmdk"),
    ("vmdk text space line", b"   \nversion=1\n", "x.img", "vmdk"),
    ("vmdk text space crlf", b"  \r\nversion=1\n", "x.img", "vmdk"),
    ("vmdk text empty line", b"\nversion=1\n", "x.img", "raw"),
    ("vmdk text indented", b" version=1\n", "x.img", "raw"),
    ("vmdk text no newline", b"version=1", "x.img", "raw"),
    ("vmdk text comment to eof", b"#" * 3000, "x.img", "raw"),
    ("vmdk text beyond 2 KiB", b"#" * 2040 + b"\nversion=1\n", "x.img",
     "raw"),
    ("vpc", _buf((0, b"conectix")), "x.img", "vpc"),
    ("vhdx", _buf((0, b"vhdxfile")), "x.img", "vhdx"),
    ("vdi", _buf(VDI_SIG), "x.img", "vdi"),
    ("parallels", _buf((0, b"WithoutFreeSpace\2\0\0\0")), "x.img",
     "parallels"),
    ("parallels ext", _buf((0, b"WithouFreSpacExt\2\0\0\0")), "x.img",
     "parallels"),
    ("parallels v1", _buf((0, b"WithoutFreeSpace\1\0\0\0")), "x.img", "raw"),
    ("bochs", _buf(*BOCHS), "x.img", "bochs"),
    ("bochs v1", _buf(*(BOCHS[:3] + [(64, struct.pack("<I", 0x10000))])),
     "x.img", "bochs"),
    ("bochs magic not NUL-ended", _buf(*(BOCHS + [(22, b"!")])), "x.img",
     "raw"),
    ("bochs undoable", _buf(*(BOCHS[:2] + [(48, b"Undoable")] + BOCHS[3:])),
     "x.img", "raw"),
    ("cloop", CLOOP, "x.img", "cloop"),
    ("cloop truncated magic", CLOOP[:40], "x.img", "raw"),
    ("dmg by name", _buf(), "x.dmg", "dmg"),
    ("dmg upper-case name", _buf(), "x.DMG", "raw"),
    ("luks", _buf((0, b"LUKS\xba\xbe\0\1")), "x.img", "luks"),
    ("luks2", _buf((0, b"LUKS\xba\xbe\0\2")), "x.img", "raw"),
    # Ties: the earlier driver of qemu's list wins.
    ("tie qcow2 vdi", _buf((0, b"QFI\xfb\0\0\0\3"), VDI_SIG), "x.img", "vdi"),
    ("tie vpc vdi", _buf((0, b"conectix"), VDI_SIG), "x.img", "vdi"),
    ("tie luks vdi", _buf((0, b"LUKS\xba\xbe\0\1"), VDI_SIG), "x.img",
     "vdi"),
    ("tie parallels vdi", _buf((0, b"WithoutFreeSpace\2\0\0\0"), VDI_SIG),
     "x.img", "parallels"),
    ("tie qed vdi", _buf((0, b"QED\0"), VDI_SIG), "x.img", "qed"),
    ("tie cloop dmg", CLOOP, "x.dmg", "dmg"),
    ("dmg beats raw", b"\1", "y.dmg", "dmg"),
]


@pytest.mark.parametrize("name,buf,filename,expected", RULES,
                         ids=[r[0] for r in RULES])
def test_probe_rule_matches_qemu(tmp_path, name, buf, filename, expected):
    ours = probe.probe(buf, len(buf), filename)
    assert ours.driver == expected, ours
    assert qemu_oracle.qemu_answer(buf, filename, str(tmp_path)) == expected


def test_probe_needs_the_first_2k():
    with pytest.raises(ValueError):
        probe.probe(b"QFI", 4096)


def _agreement(tmp_path):
    asked, skipped, disagree = [], [], []
    for case in CASES:
        head = qemu_oracle.file_head(case.file)
        size = os.path.getsize(case.file)
        ours = probe.probe(head, size, case.file).driver
        theirs = qemu_oracle.qemu_answer(head, case.file, str(tmp_path))
        if theirs is None:
            skipped.append(case.name)
            continue
        asked.append(case.name)
        if ours != theirs:
            disagree.append((case.name, ours, theirs))
    return asked, skipped, disagree


# Built without random bytes, so always safe to ask: the classes this
# check exists for must be among the files compared.
MUST_ASK = ["iso_with_vmdk_text_rel_extent", "iso_with_vmdk3_header",
            "raw_with_vmdk_text", "gpt_with_vmdk_text_boot_code",
            "iso_with_parallels_header", "iso_with_cloop_magic",
            "raw_text_blank_first_line", "raw_shell_script",
            "parallels_as_raw", "parallels_ext_magic_as_raw", "qcow1_as_raw",
            "bochs_as_raw", "cloop_as_raw", "probe_tie_qcow2_vdi",
            "probe_tie_parallels_vdi", "probe_tie_qed_vdi",
            "probe_tie_vhdx_vdi", "probe_tie_vmdk_text_vdi",
            "probe_tie_cloop_dmg", "good_raw", "good_qcow2", "good_vmdk",
            "iso", "iso_hybrid_gpt", "gpt_pmbr", "qed"]


def test_probe_agrees_with_qemu_on_the_corpus(tmp_path):
    asked, skipped, disagree = _agreement(tmp_path)
    assert disagree == []
    assert set(MUST_ASK) <= set(asked), set(MUST_ASK) - set(asked)
    # Not asked: files whose first 2 KiB name an absolute or ../ path or a
    # json: spec (backing files, data files, extents), where asking qemu
    # could open it; the filter also skips a file whose random UUID bytes
    # happen to look like a path, so only a share is asserted.
    assert len(asked) > 0.75 * len(CASES), (len(asked), skipped)


FOREIGN = [("parallels_as_raw", "parallels", 1 << 20),
           ("parallels_ext_magic_as_raw", "parallels", 1 << 20),
           ("qcow1_as_raw", "qcow", 1 << 20),
           ("bochs_as_raw", "bochs", 1 << 20),
           ("cloop_as_raw", "cloop", 64 << 10),
           ("dmg_as_raw", "dmg", 1 << 20)]


@pytest.mark.parametrize("name,driver,vsize", FOREIGN,
                         ids=[f[0] for f in FOREIGN])
def test_foreign_format_is_real_and_refused_by_name(corpus, name, driver,
                                                    vsize):
    case = corpus[name]
    # qemu opens it as that format (so Glance would store a file that is
    # a qemu image of a format it has no disk_format for)...
    info = runner.QemuImg().run(["info", "-f", driver, "--output=json",
                                 case.file])
    assert '"format": "%s"' % driver in info.stdout
    assert '"virtual-size": %d' % vsize in info.stdout
    # ... and the rejection says so, in the words.
    report = Engine().inspect(case.file, "raw")
    label = "qcow (version 1)" if driver == "qcow" else driver
    assert "foreign_format" in report.codes
    assert report.reason().startswith("%s image uploaded as raw" % label) \
        or ("%s image uploaded as raw" % label) in report.reason()


@pytest.mark.parametrize("name,seen", [
    ("iso_with_vmdk_text_abs_extent", "vmdk"),
    ("iso_with_vmdk_text_rel_extent", "vmdk"),
    ("iso_with_vmdk3_header", "vmdk"),
    ("raw_with_vmdk_text", "vmdk"),
    ("gpt_with_vmdk_text_boot_code", "vmdk"),
])
def test_probe_polyglot_message_names_both_formats(corpus, name, seen):
    case = corpus[name]
    report = Engine().inspect(case.file, case.claimed)
    detected = report.detected_format
    assert report.codes == ["probe_mismatch"]
    assert "reads this %s image as %s" % (detected, seen) in report.reason()
    # Refused before any qemu-img process looked at the file.
    assert report.qemu_ran is False
    assert report.qemu_probe == seen


def test_polyglot_was_invisible_to_oslo(corpus):
    # What made this class pass before: oslo's inspectors see only an ISO.
    det = detection.detect(corpus["iso_with_vmdk_text_abs_extent"].file)
    assert [str(m) for m in det.matches] == ["iso"]


def test_fixed_vhd_probes_raw_and_is_still_accepted(corpus):
    report = Engine().inspect(corpus["vhd_fixed"].file, "vhd")
    assert report.qemu_probe == "raw" and report.accepted


def test_probe_reads_nothing_more(corpus):
    # The probe works on the bytes detection already read.
    case = corpus["good_raw"]
    report = Engine().inspect(case.file, "raw")
    det = detection.detect(case.file)
    assert report.bytes_read == det.bytes_read
