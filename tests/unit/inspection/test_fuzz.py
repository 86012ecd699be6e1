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

"""Fuzz the engine with mutated headers of real images (hypothesis).

Property: whatever the bytes, the engine returns a report (never raises, and
never hits its own "internal" error path), reads at most its read limit
(plus the 1.5 KiB tail), and keeps its Python-side memory small. qemu-img is
bounded by prlimit and a kill-on-timeout (tested in test_qemu_runner); the
full-engine fuzz below exercises those paths with real qemu-img runs.
The probe fuzz gives mutated first 2 KiB (with other formats' magics
planted) to both glance_ext.qemu.probe and qemu-img's own probe
(qemu_oracle) and requires the same driver.
Wall time is not asserted (benchmarks measure time, tests do not).
"""

import os
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from glance_ext.inspection import detection
from glance_ext.inspection.engine import Engine, check_format, check_probe
from glance_ext.inspection.engine import classify
from glance_ext.inspection.policy import Policy
from glance_ext.inspection.report import Report
from glance_ext.qemu import probe
from glance_ext.testing import corpus as generate
from glance_ext.testing import qemu_oracle

SEEDS = ["good_qcow2", "good_vmdk", "good_vmdk_stream", "good_vhdx",
         "good_vhd", "good_vdi", "iso_hybrid_gpt", "gpt_pmbr",
         "qcow2_data_file", "vmdk_stream_gd_at_end", "luks_v1_not_allowed"]
# Offsets worth mutating: headers, VMDK descriptor, VHDX header/region/
# metadata tables, ISO descriptor, and the tail (footers).
HOT = [(0, 1024), (0x200, 0x1200), (0x30000, 0x30100), (0x8000, 0x8100)]
LIMIT = 2 * 1024 * 1024

CASES = {c.name: c for c in generate.ensure()}


def _seed_bytes(name):
    with open(CASES[name].file, "rb") as f:
        return f.read(4 * 1024 * 1024)


SEED_DATA = {name: _seed_bytes(name) for name in SEEDS}


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(SEEDS))
    data = bytearray(SEED_DATA[name])
    n = draw(st.integers(min_value=1, max_value=16))
    for _ in range(n):
        tail = (max(0, len(data) - 1536), len(data))
        where = draw(st.sampled_from(HOT + [tail]))
        lo, hi = where[0], min(where[1], len(data))
        if lo >= hi:
            continue
        off = draw(st.integers(min_value=lo, max_value=hi - 1))
        kind = draw(st.sampled_from(["byte", "u32max", "u64max", "zero"]))
        if kind == "byte":
            data[off] = draw(st.integers(0, 255))
        elif kind == "u32max":
            data[off:off + 4] = b"\xff\xff\xff\xff"
        elif kind == "u64max":
            data[off:off + 8] = b"\xff" * 8
        else:
            data[off:off + 8] = bytes(8)
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return name, bytes(data)


def _write(tmp_path_factory, data):
    path = os.path.join(str(tmp_path_factory.mktemp("fuzz")), "img")
    with open(path, "wb") as f:
        f.write(data)
    return path


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(sample=mutated())
def test_detection_and_header_checks_never_crash(tmp_path_factory, sample):
    _name, data = sample
    path = _write(tmp_path_factory, data)
    tracemalloc.start()
    try:
        det = detection.detect(path, LIMIT)
        report = Report()
        fmt, inspector = classify(det, report, Policy())
        if fmt is not None:
            guess = probe.probe(det.head, det.file_size, path)
            check_probe(det, guess, fmt, report)
            check_format(det, fmt, inspector, Policy(), report)
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert det.bytes_read <= LIMIT + detection.TAIL
    assert peak < 32 * 1024 * 1024
    assert "internal" not in report.codes


@pytest.mark.parametrize("seed_name", ["good_qcow2", "good_vmdk",
                                       "good_vhdx", "good_vhd"])
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(data=st.data())
def test_full_engine_with_qemu_never_crashes(tmp_path_factory, seed_name,
                                             data):
    raw = bytearray(SEED_DATA[seed_name])
    for _ in range(data.draw(st.integers(1, 8))):
        off = data.draw(st.integers(0, min(len(raw), 4096) - 1))
        raw[off] = data.draw(st.integers(0, 255))
    path = _write(tmp_path_factory, bytes(raw))
    report = Engine().inspect(path, CASES[seed_name].claimed)
    assert report.verdict in ("accepted", "rejected")
    assert "internal" not in report.codes, report.to_dict()
    assert report.bytes_read <= LIMIT + detection.TAIL


PROBE_SEEDS = SEEDS + ["iso_with_vmdk_text_rel_extent", "parallels_as_raw",
                       "qcow1_as_raw", "bochs_as_raw", "cloop_as_raw",
                       "probe_tie_qcow2_vdi", "raw_text_blank_first_line",
                       "gpt_with_vmdk_text_boot_code", "good_qcow2"]
# Magics and texts of every probing driver, planted at 0 or at VDI's 0x40.
MAGICS = [b"QFI\xfb\0\0\0\x01", b"QFI\xfb\0\0\0\x03", b"QED\0",
          b"KDMV", b"COWD", b"version=1\n", b"# x\nversion=2\r\n",
          b"  \nversion=3\n", b"conectix", b"vhdxfile",
          b"\x7f\x10\xda\xbe", b"WithoutFreeSpace\x02\0\0\0",
          b"WithouFreSpacExt\x02\0\0\0", b"LUKS\xba\xbe\0\x01",
          b"Bochs Virtual HD Image\0", generate.CLOOP_V2_MAGIC]
PROBE_HEADS = {n: SEED_DATA.get(n) or _seed_bytes(n) for n in PROBE_SEEDS}


@st.composite
def probe_input(draw):
    name = draw(st.sampled_from(PROBE_SEEDS))
    data = bytearray(PROBE_HEADS[name][:probe.PROBE_BYTES])
    for _ in range(draw(st.integers(0, 3))):
        magic = draw(st.sampled_from(MAGICS))
        off = draw(st.sampled_from([0, 0x40, 32, 48, 64, 16]))
        data[off:off + len(magic)] = magic
    for _ in range(draw(st.integers(0, 12))):
        if not data:
            break
        off = draw(st.integers(0, min(len(data), 256) - 1))
        data[off] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    filename = draw(st.sampled_from(["image", "image.dmg", "x.DMG"]))
    return bytes(data), filename


@settings(max_examples=2000, deadline=None)
@given(data=st.binary(max_size=probe.PROBE_BYTES),
       size=st.integers(0, 1 << 40), name=st.text(max_size=12))
def test_probe_never_raises_and_names_a_driver(data, size, name):
    # The head is the whole file, or its first 2 KiB of a larger one.
    size = len(data) if len(data) < probe.PROBE_BYTES else max(size,
                                                               len(data))
    result = probe.probe(data, size, name)
    assert result.driver in dict(probe.PROBES)
    assert result.score == max([s for _d, s in result.scores] or [1])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(sample=probe_input())
def test_probe_matches_qemu_on_mutated_headers(tmp_path_factory, sample):
    data, filename = sample
    work = str(tmp_path_factory.mktemp("probe"))
    theirs = qemu_oracle.qemu_answer(data, filename, work)
    if theirs is None:      # names a path: not asked (see qemu_oracle)
        return
    assert probe.probe(data, len(data), filename).driver == theirs
