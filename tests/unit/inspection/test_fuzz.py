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
Wall time is not asserted (benchmarks measure time, tests do not).
"""

import os
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from glance_ext.inspection import detection
from glance_ext.inspection.engine import Engine, check_format, classify
from glance_ext.inspection.policy import Policy
from glance_ext.inspection.report import Report
from glance_ext.testing import corpus as generate

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
