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

"""The conversion engine against real qemu-img on small generated images.

Proves: every accepted input converts to raw and qcow2 (and one to every
other output format) with the guest data unchanged (qemu-img compare);
the tuned command line; progress reports; refusals before writing
(space, busy host); and that a timeout, a kill, a file-size limit or a
failed verification leave no output behind.
"""

import os
import subprocess
import threading
import time

import pytest

from glance_ext.conversion import engine as engine_mod
from glance_ext.conversion import preflight
from glance_ext.conversion import process
from glance_ext.conversion import settings as settings_mod
from glance_ext.conversion import slots
from glance_ext.conversion import verify
from glance_ext.qemu import runner
from glance_ext.testing import qemu_procs
from glance_ext.testing import images


def make_engine(tmp_path, **kw):
    kw.setdefault("lock_dir", str(tmp_path / "slots"))
    kw.setdefault("free_space_reserve", 0)
    return engine_mod.ConversionEngine(settings_mod.Settings(**kw))


@pytest.mark.parametrize("target", ["raw", "qcow2"])
@pytest.mark.parametrize("name", images.NAMES)
def test_every_input_converts(samples, tmp_path, name, target):
    sample = samples[name]
    eng = make_engine(tmp_path)
    report = eng.inspect_source(sample.path, sample.claimed, "bare")
    dst = str(tmp_path / ("out." + target))
    out = eng.convert(sample.path, report.detected_format, dst, target)
    assert out.target_format == target
    assert out.virtual_size == out.source_virtual_size == images.VIRTUAL_SIZE
    assert out.size == os.path.getsize(dst)
    assert qemu_procs.same_guest_data(sample.path, sample.qemu_format, dst, target)


@pytest.mark.parametrize("target,driver", [("vmdk", "vmdk"), ("vhd", "vpc"),
                                           ("vhdx", "vhdx"), ("vdi", "vdi")])
def test_other_output_formats_with_compare(samples, tmp_path, target, driver):
    eng = make_engine(tmp_path, compare=True)
    dst = str(tmp_path / "out")
    out = eng.convert(samples["qcow2"].path, "qcow2", dst, target)
    assert out.compared and out.virtual_size == images.VIRTUAL_SIZE
    info = subprocess.run(["qemu-img", "info", "-f", driver, dst],
                          stdout=subprocess.PIPE, text=True).stdout
    assert "virtual size: 4 MiB" in info
    if target == "vmdk":
        assert "streamOptimized" in info


def test_progress_reports_end_with_verification(samples, tmp_path):
    seen = []
    make_engine(tmp_path).convert(samples["vdi"].path, "vdi",
                                  str(tmp_path / "o"), "raw",
                                  on_progress=seen.append)
    assert seen[0].percent == 0.0
    assert any(p.percent == 100.0 and p.phase == "converting" for p in seen)
    assert seen[-1].phase == "verifying"
    assert seen[-1].total_bytes == images.VIRTUAL_SIZE


def test_command_is_tuned():
    cmd = process.build_command(
        "qemu-img", "/s", "vhd", "/d", "qcow2", ["compat=1.1"],
        process.Tuning(coroutines=16, cache_mode="none", sparse_size_kb=8,
                       rate_limit_mb=0, nice=10, ionice_class="best-effort",
                       ionice_level=7))
    i = cmd.index("convert")
    assert cmd[i - 1] == "qemu-img"
    assert cmd[0].endswith("ionice") and cmd[1:5] == ["-c", "2", "-n", "7"]
    qemu = cmd[i:]
    for flag in (["-f", "vpc"], ["-O", "qcow2"], ["-m", "16"], ["-t", "none"],
                 ["-S", "8k"], ["-o", "compat=1.1"]):
        j = qemu.index(flag[0])
        assert qemu[j + 1] == flag[1]
    assert "-W" in qemu and "-p" in qemu and "-r" not in qemu
    assert qemu[-2:] == ["/s", "/d"]


def test_limits_and_niceness_reach_the_child(tmp_path):
    """The rlimits (through oslo's prlimit wrapper), niceness and parent
    death signal run() sets are those the command itself has."""
    out = tmp_path / "limits"
    script = ("import ctypes,os,resource;sig=ctypes.c_int();"
              "ctypes.CDLL(None).prctl(2,ctypes.byref(sig),0,0,0);"
              "open(%r,'w').write(' '.join(map(str,["
              "resource.getrlimit(resource.RLIMIT_CPU)[0],"
              "resource.getrlimit(resource.RLIMIT_AS)[0],"
              "resource.getrlimit(resource.RLIMIT_FSIZE)[0],"
              "os.nice(0),sig.value])))" % str(out))
    import signal
    import sys
    bounds = runner.Limits(cpu_seconds=77, address_space_bytes=2 * 1024 ** 3,
                           timeout_seconds=30, file_size_bytes=12345678)
    process.run([sys.executable, "-c", script], bounds, 1,
                cpu=process.CpuPriority(7))
    cpu, addr, fsize, nice, deathsig = map(int, out.read_text().split())
    assert (cpu, addr, fsize) == (77, 2 * 1024 ** 3, 12345678)
    assert nice >= 7
    assert deathsig == signal.SIGKILL


def test_idle_policy_reaches_the_command(tmp_path):
    """CpuPolicy.IDLE puts the command itself (behind the prlimit
    wrapper's exec) in SCHED_IDLE, with its nice value; NORMAL leaves it
    at SCHED_OTHER."""
    import sys
    script = ("import os;open(%r,'w').write('%%d %%d' %% "
              "(os.sched_getscheduler(0), os.nice(0)))")
    bounds = runner.Limits(timeout_seconds=30)
    for policy, expected in ((process.CpuPolicy.IDLE, os.SCHED_IDLE),
                             (process.CpuPolicy.NORMAL, os.SCHED_OTHER)):
        out = tmp_path / policy.value
        process.run([sys.executable, "-c", script % str(out)], bounds, 1,
                    cpu=process.CpuPriority(5, policy))
        seen, nice = map(int, out.read_text().split())
        assert seen == expected, policy
        assert nice >= 5


def test_cache_mode_auto(tmp_path):
    assert process.choose_cache_mode("auto", str(tmp_path), 10, 100) == \
        "unsafe"
    expect = "none" if process.supports_direct_io(str(tmp_path)) else \
        "unsafe"
    assert process.choose_cache_mode("auto", str(tmp_path), 100, 100) == \
        expect
    assert process.choose_cache_mode("writeback", str(tmp_path), 0, 1) == \
        "writeback"
    # 0: a quarter of the memory available now decides
    memory = process.available_memory()
    assert memory and memory > 0
    assert process.choose_cache_mode("auto", str(tmp_path), memory // 8,
                                     0) == "unsafe"
    assert process.choose_cache_mode("auto", str(tmp_path), memory // 2,
                                     0) == expect


def test_not_enough_space_refused_before_writing(samples, tmp_path):
    eng = make_engine(tmp_path, free_space_reserve=1 << 60)
    dst = str(tmp_path / "o")
    with pytest.raises(preflight.InsufficientSpace) as err:
        eng.convert(samples["qcow2"].path, "qcow2", dst, "raw")
    assert "free" in str(err.value) and "needs" in str(err.value)
    assert not os.path.exists(dst)


def test_busy_host_refused(samples, tmp_path):
    eng = make_engine(tmp_path, max_concurrent=1, slot_wait_seconds=0)
    held = slots.HostSlots(str(tmp_path / "slots"), 1).try_acquire()
    try:
        with pytest.raises(slots.SlotTimeout):
            eng.convert(samples["qcow2"].path, "qcow2", str(tmp_path / "o"),
                        "raw")
    finally:
        held.release()


@pytest.fixture(scope="module")
def slow_source(tmp_path_factory):
    """48 MiB of written data: with rate_limit_mb=4 a conversion lasts
    about 12 s, long enough to time out or kill it."""
    path = str(tmp_path_factory.mktemp("slow") / "slow.raw")
    return images.pattern_image(path, 48)


def test_timeout_kills_and_cleans(slow_source, tmp_path):
    eng = make_engine(tmp_path, rate_limit_mb=4, timeout_base_seconds=1,
                      timeout_seconds_per_gb=0)
    dst = str(tmp_path / "o.qcow2")
    start = time.monotonic()
    with pytest.raises(process.ConvertError) as err:
        eng.convert(slow_source, "raw", dst, "qcow2")
    assert err.value.kind == "timeout"
    assert time.monotonic() - start < 8
    assert not os.path.exists(dst)
    assert not qemu_procs.qemu_img_pids(dst, subcommand=None)


def test_killed_qemu_img_reported_and_cleaned(slow_source, tmp_path):
    eng = make_engine(tmp_path, rate_limit_mb=4)
    dst = str(tmp_path / "killed.qcow2")
    errors = []

    def run():
        try:
            eng.convert(slow_source, "raw", dst, "qcow2")
        except process.ConvertError as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 10
    while not qemu_procs.qemu_img_pids(dst, subcommand=None) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in qemu_procs.qemu_img_pids(dst, subcommand=None):
        os.kill(pid, 9)
    t.join(30)
    assert errors and errors[0].kind == "killed"
    assert "signal 9" in str(errors[0])
    assert not os.path.exists(dst)


def test_file_size_limit_stops_a_growing_output(slow_source, tmp_path):
    bounds = runner.Limits(cpu_seconds=60, address_space_bytes=2 * 1024 ** 3,
                           timeout_seconds=60,
                           file_size_bytes=8 * 1024 * 1024)
    dst = str(tmp_path / "o.raw")
    cmd = process.build_command("qemu-img", slow_source, "raw", dst, "qcow2",
                                [], process.Tuning())
    with pytest.raises(process.ConvertError) as err:
        process.run(cmd, bounds, 48 * 1024 * 1024)
    assert err.value.kind == "limit"


def test_output_that_is_another_image_fails_verification(tmp_path):
    # A qcow2 whose guest data is itself a qcow2: converted to raw, the
    # output *is* the inner qcow2. It must never be stored as raw.
    inner = str(tmp_path / "inner.qcow2")
    images.qemu_img("create", "-f", "qcow2", inner, "1M")
    with open(inner, "r+b") as fh:
        fh.truncate(1024 * 1024)
    outer = str(tmp_path / "outer.qcow2")
    images.qemu_img("convert", "-f", "raw", "-O", "qcow2", inner, outer)
    eng = make_engine(tmp_path)
    dst = str(tmp_path / "o.raw")
    with pytest.raises(verify.VerificationFailed) as err:
        eng.convert(outer, "qcow2", dst, "raw")
    assert "qcow2, not raw" in str(err.value)
    assert not os.path.exists(dst)


def test_source_rejected_by_inspection(tmp_path):
    bad = str(tmp_path / "b.qcow2")
    images.qemu_img("create", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw",
                    bad)
    with pytest.raises(engine_mod.SourceRejected) as err:
        make_engine(tmp_path).inspect_source(bad, "qcow2", "bare")
    assert "backing" in str(err.value)


def test_sha512(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert engine_mod.sha512_of(str(p)).startswith("ddaf35a193617aba")


def test_refused_idle_policy_is_a_warning(caplog):
    """A process the kernel kept at SCHED_OTHER (here: this one) is named
    in a warning; the conversion is not failed for it."""
    import logging
    with caplog.at_level(logging.WARNING):
        process._check_idle(os.getpid(), "/usr/bin/nbdcopy")
    assert "cpu_policy = idle, but nbdcopy (pid %d)" % os.getpid() \
        in caplog.text
    assert "kernel refused SCHED_IDLE" in caplog.text
