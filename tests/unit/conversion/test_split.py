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

"""Split conversion against real qemu-img and qemu-nbd.

Proves: ranges hold equal data and cover the image exactly; qemu-img map
tells compressed sources from plain ones; a compressed qcow2 and a
streamOptimized VMDK split into raw and qcow2 outputs that equal the
source (qemu-img compare) and pass qemu-img check; plain sources and
other outputs stay single-process; a killed worker or a timeout stops
every process (converters and qemu-nbd) and leaves no output.
"""

import os
import threading
import time

import pytest

from glance_ext.conversion import engine as engine_mod
from glance_ext.conversion import process
from glance_ext.conversion import settings as settings_mod
from glance_ext.conversion import split
from glance_ext.qemu import runner
from glance_ext.testing import qemu_procs
from glance_ext.testing import images

MiB = 1024 * 1024


def engine(tmp_path, **kw):
    kw.setdefault("lock_dir", str(tmp_path / "slots"))
    kw.setdefault("free_space_reserve", 0)
    kw.setdefault("split_workers", 2)
    kw.setdefault("split_min_data", 1 * MiB)
    return engine_mod.ConversionEngine(settings_mod.Settings(**kw))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return images.split_sources(str(tmp_path_factory.mktemp("split")))


def limits():
    return runner.Limits(timeout_seconds=30)


def test_plan_balances_data_and_covers_the_image():
    vsize = 1024 * MiB
    counts = [0] * 512
    for i in range(384, 512):       # all the data in the last quarter
        counts[i] = 2 * MiB
    ranges = split.plan(vsize, 4, counts)
    assert len(ranges) == 4
    assert ranges[0].offset == 0
    for a, b in zip(ranges, ranges[1:]):
        assert a.offset + a.length == b.offset
        assert b.offset % split.ALIGN == 0
    assert ranges[-1].offset + ranges[-1].length == vsize
    assert [r.data_bytes for r in ranges] == [64 * MiB] * 4
    # the first range takes all the empty space before the data
    assert ranges[0].length == 832 * MiB


def test_plan_never_splits_empty_or_single_worker():
    assert split.plan(64 * MiB, 4, [0] * 32) == [split.Range(0, 64 * MiB, 0)]
    assert len(split.plan(64 * MiB, 1, [2 * MiB] * 32)) == 1


def test_map_tells_compressed_from_plain(sources):
    for name, fmt, compressed in (("qcow2", "qcow2", False),
                                  ("qcow2_compressed", "qcow2", True),
                                  ("vmdk_stream", "vmdk", True)):
        found = split.map_data("qemu-img", sources[name], fmt, 64 * MiB,
                               limits())
        assert sum(found.counts) == 48 * MiB, name
        assert (found.compressed_bytes == 48 * MiB) is compressed, name


def test_map_failure_means_no_split(tmp_path):
    bogus = tmp_path / "not-qcow2"
    bogus.write_bytes(b"x" * 4096)
    assert split.map_data("qemu-img", str(bogus), "qcow2", 4096,
                          limits()) is None


@pytest.mark.parametrize("source,fmt", [("qcow2_compressed", "qcow2"),
                                        ("vmdk_stream", "vmdk")])
@pytest.mark.parametrize("target", ["raw", "qcow2"])
def test_compressed_sources_split_and_equal_the_source(
        sources, tmp_path, source, fmt, target):
    dst = str(tmp_path / ("out." + target))
    seen = []
    out = engine(tmp_path).convert(sources[source], fmt, dst, target,
                                   on_progress=seen.append)
    assert out.processes == 2
    assert out.virtual_size == 64 * MiB
    assert qemu_procs.same_guest_data(sources[source], fmt, dst, target)
    if target == "qcow2":
        images.qemu_img("check", "-f", "qcow2", dst)
    else:
        # holes stay holes: 48 MiB of data, not 64
        assert os.stat(dst).st_blocks * 512 <= 49 * MiB
    assert seen[-1].phase == "verifying"
    assert [p.percent for p in seen] == sorted(p.percent for p in seen)
    assert not [n for n in os.listdir("/tmp")
                if n.startswith("glance-ext-nbd-") and
                os.stat("/tmp/" + n).st_mtime > time.time() - 60]


@pytest.mark.parametrize("why,kw", [
    ("plain data", dict(source="qcow2", fmt="qcow2", target="raw")),
    ("under split_min_data", dict(source="vmdk_stream", fmt="vmdk",
                                  target="raw", split_min_data=64 * MiB)),
    ("vmdk output", dict(source="qcow2_compressed", fmt="qcow2",
                         target="vmdk")),
    ("split_workers=1", dict(source="vmdk_stream", fmt="vmdk",
                             target="qcow2", split_workers=1)),
    ("no qemu-nbd", dict(source="vmdk_stream", fmt="vmdk", target="qcow2",
                         qemu_nbd="/nonexistent/qemu-nbd")),
])
def test_single_process_otherwise(sources, tmp_path, why, kw):
    source, fmt, target = kw.pop("source"), kw.pop("fmt"), kw.pop("target")
    dst = str(tmp_path / ("out." + target))
    out = engine(tmp_path, **kw).convert(sources[source], fmt, dst, target)
    assert out.processes == 1, why
    assert qemu_procs.same_guest_data(sources[source], fmt, dst, target)


@pytest.mark.parametrize("target", ["raw", "qcow2"])
def test_timeout_stops_every_process(sources, tmp_path, target):
    dst = str(tmp_path / ("slow." + target))
    eng = engine(tmp_path, rate_limit_mb=2, timeout_base_seconds=2,
                 timeout_seconds_per_gb=0)
    start = time.monotonic()
    with pytest.raises(process.ConvertError) as err:
        eng.convert(sources["vmdk_stream"], "vmdk", dst, target)
    assert err.value.kind == "timeout"
    assert time.monotonic() - start < 10
    assert not os.path.exists(dst)
    assert not qemu_procs.pids_naming(dst)
    assert not qemu_procs.qemu_img_pids(sources["vmdk_stream"],
                                        subcommand=None)


def test_a_killed_worker_stops_the_others(sources, tmp_path):
    dst = str(tmp_path / "killed.raw")
    eng = engine(tmp_path, rate_limit_mb=2)
    errors = []

    def run():
        try:
            eng.convert(sources["qcow2_compressed"], "qcow2", dst, "raw")
        except process.ConvertError as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 10
    while len(qemu_procs.qemu_img_pids(dst)) < 2 and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    pids = qemu_procs.qemu_img_pids(dst)
    assert len(pids) == 2
    os.kill(pids[0], 9)
    t.join(30)
    assert errors and errors[0].kind == "killed"
    assert not os.path.exists(dst)
    assert not qemu_procs.qemu_img_pids(dst)
