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

"""The streaming conversion (``conversion.stream``) with real tools.

Real nbdcopy and qemu-nbd through the engine (``start_stream``), and a
reader in a thread standing for Glance's store upload (a plain
``open()``/``read()`` of the FIFO, as glance_store's file driver does).
Proves: the path choice; a full stream is the raw image, exactly the
virtual size, with the FIFO and the slot gone afterwards; a reader that
never opens, that closes early, a producer killed from outside, a timeout
and a cancel each end the stream within a bounded time with no process
and nothing in the directory left, and the reader never receives the
held-back tail of a failed stream (so Glance's size check fails the
upload); cpu_policy = idle reaches every producer thread; a producer
whose output is shorter or longer than the virtual size fails the same
way.
"""

import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from glance_ext import exceptions
from glance_ext import testing
from glance_ext.conversion import engine as engine_mod
from glance_ext.conversion import process
from glance_ext.conversion import slots as slots_mod
from glance_ext.conversion import stream as stream_mod
from glance_ext.conversion.settings import Settings
from glance_ext.qemu import runner
from glance_ext.testing import images
from glance_ext.testing import qemu_procs

MiB = 1024 * 1024


def _tools():
    testing.needs(None if shutil.which("nbdcopy") and shutil.which(
        "qemu-nbd") else "nbdcopy (libnbd-bin) and qemu-nbd are needed")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    d = tmp_path_factory.mktemp("stream-src")
    return images.pattern_image(str(d / "src.qcow2"), 16, "qcow2")


@pytest.fixture
def staging(tmp_path):
    d = tmp_path / "staging"
    d.mkdir()
    return d


def settings_for(tmp_path, **extra):
    values = dict(lock_dir=str(tmp_path / "slots"), max_concurrent=1,
                  progress_interval_seconds=0.2)
    values.update(extra)
    return Settings(**values)


class Reader(threading.Thread):
    """Glance's store upload: open the FIFO, read it in 64 KiB chunks."""

    def __init__(self, path, stop_after=None, delay=0.0):
        super().__init__(daemon=True)
        self.path = path
        self.stop_after = stop_after
        self.delay = delay
        self.digest = hashlib.sha256()
        self.count = 0
        self.eof_at = None

    def run(self):
        time.sleep(self.delay)
        with open(self.path, "rb") as fh:
            while True:
                data = fh.read(65536)
                if not data:
                    self.eof_at = time.monotonic()
                    return
                self.digest.update(data)
                self.count += len(data)
                if self.stop_after and self.count >= self.stop_after:
                    return


def start(tmp_path, staging, source, **extra):
    engine = engine_mod.ConversionEngine(settings_for(tmp_path, **extra))
    fifo = str(staging / "img.glance_ext_convert.raw.stream")
    told = []
    streaming = engine.start_stream(source, "qcow2", fifo,
                                    on_reader=lambda: told.append(
                                        time.monotonic()))
    return streaming, fifo, told


def assert_nothing_left(staging, source, tmp_path):
    assert os.listdir(str(staging)) == []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
            qemu_procs.pids_naming(source)):
        time.sleep(0.1)
    assert not qemu_procs.pids_naming(source)
    # The slot is free again.
    slots = slots_mod.HostSlots(str(tmp_path / "slots"), 1)
    slot = slots.try_acquire()
    assert slot is not None
    slot.release()


def raw_digest(source, tmp_path):
    out = str(tmp_path / "expected.raw")
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw",
                    source, out], check=True)
    with open(out, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest(), os.path.getsize(out)


def test_path_choice():
    def choose(**kw):
        args = dict(enabled=True, target_format="raw", stores=["ceph"],
                    plugins_after=[], compare=False, missing_tools=[],
                    size_check=True)
        args.update(kw)
        return stream_mod.choose_path(**args)

    assert choose().path is stream_mod.Path.STREAM
    assert choose(stores=[]).path is stream_mod.Path.STREAM
    for kw, why in ((dict(target_format="qcow2"), "only raw outputs"),
                    (dict(enabled=False), "stream_raw = false"),
                    (dict(stores=["a", "b"]), "2 stores"),
                    (dict(plugins_after=["glance_ext_inject"]),
                     "glance_ext_inject runs after"),
                    (dict(compare=True), "compare = true"),
                    (dict(missing_tools=["nbdcopy"]), "nbdcopy not found"),
                    (dict(size_check=False), "cannot be told the size")):
        choice = choose(**kw)
        assert choice.path is stream_mod.Path.FILE, kw
        assert why in choice.reason, (kw, choice.reason)


def test_full_stream_is_the_raw_image(tmp_path, staging, source):
    _tools()
    streaming, fifo, told = start(tmp_path, staging, source)
    reader = Reader(fifo)
    reader.start()
    result = streaming.result(timeout=120)
    reader.join(30)
    expected, size = raw_digest(source, tmp_path)
    assert result.state is stream_mod.State.DONE, result.error
    assert result.bytes_sent == size == streaming.virtual_size
    assert reader.count == size
    assert reader.digest.hexdigest() == expected
    # The expected size was set after the reader started reading and
    # before it saw the end.
    assert len(told) == 1 and told[0] <= reader.eof_at
    assert_nothing_left(staging, source, tmp_path)


def test_reader_never_opens(tmp_path, staging, source):
    _tools()
    started = time.monotonic()
    streaming, fifo, told = start(tmp_path, staging, source,
                                  stream_open_timeout_seconds=1)
    result = streaming.result(timeout=30)
    assert time.monotonic() - started < 20
    assert result.state is stream_mod.State.FAILED
    assert isinstance(result.error, exceptions.QemuImgTimeout)
    assert "did not open the stream within 1s" in str(result.error)
    assert not result.reader_opened and not told
    assert_nothing_left(staging, source, tmp_path)


def test_reader_closes_early(tmp_path, staging, source):
    _tools()
    streaming, fifo, _ = start(tmp_path, staging, source)
    reader = Reader(fifo, stop_after=2 * MiB)
    reader.start()
    result = streaming.result(timeout=60)
    assert result.state is stream_mod.State.FAILED
    assert "stopped reading the stream" in str(result.error)
    assert_nothing_left(staging, source, tmp_path)


def test_producer_killed(tmp_path, staging, source):
    _tools()
    streaming, fifo, _ = start(tmp_path, staging, source, rate_limit_mb=2)
    reader = Reader(fifo)
    reader.start()
    deadline = time.monotonic() + 30
    pids = []
    while time.monotonic() < deadline and not pids:
        pids = [p for p in qemu_procs.pids_naming(source)
                if p != os.getpid()]
        time.sleep(0.1)
    assert pids
    for pid in pids:
        os.kill(pid, 9)
    result = streaming.result(timeout=60)
    reader.join(30)
    assert result.state is stream_mod.State.FAILED
    assert "killed by signal 9" in str(result.error) or \
        "exited with status" in str(result.error), result.error
    # The tail was held back: the reader got less than the virtual size.
    assert reader.count < streaming.virtual_size
    assert_nothing_left(staging, source, tmp_path)


def test_idle_cpu_policy_reaches_every_producer_thread(
        tmp_path, staging, source):
    """cpu_policy = idle puts nbdcopy and qemu-nbd (and every thread they
    start) in SCHED_IDLE, and the stream still completes."""
    _tools()
    streaming, fifo, _ = start(tmp_path, staging, source, rate_limit_mb=4,
                               cpu_policy=process.CpuPolicy.IDLE)
    reader = Reader(fifo)
    reader.start()
    deadline = time.monotonic() + 30
    policies = {}
    while time.monotonic() < deadline and len(policies) < 2:
        for pid in qemu_procs.pids_naming(source):
            if pid == os.getpid():
                continue
            try:
                tids = [int(t) for t in os.listdir("/proc/%d/task" % pid)]
                policies[pid] = {os.sched_getscheduler(t) for t in tids}
            except (FileNotFoundError, ProcessLookupError):
                pass
        time.sleep(0.1)
    result = streaming.result(timeout=120)
    reader.join(30)
    assert result.state is stream_mod.State.DONE, result.error
    assert reader.count == streaming.virtual_size
    # nbdcopy and the qemu-nbd it runs both name the source.
    assert len(policies) >= 2, policies
    assert all(p == {os.SCHED_IDLE} for p in policies.values()), policies
    assert_nothing_left(staging, source, tmp_path)


def test_timeout(tmp_path, staging, source):
    _tools()
    streaming, fifo, _ = start(tmp_path, staging, source, rate_limit_mb=1,
                               timeout_base_seconds=2,
                               timeout_seconds_per_gb=0)
    reader = Reader(fifo)
    reader.start()
    result = streaming.result(timeout=60)
    reader.join(30)
    assert result.state is stream_mod.State.FAILED
    assert isinstance(result.error, exceptions.QemuImgTimeout)
    assert "did not finish within 2s" in str(result.error)
    assert reader.count < streaming.virtual_size
    assert_nothing_left(staging, source, tmp_path)


def test_cancel_while_waiting_for_the_reader(tmp_path, staging, source):
    _tools()
    streaming, fifo, _ = start(tmp_path, staging, source)
    streaming.cancel()
    result = streaming.result(timeout=10)
    assert result.state is stream_mod.State.FAILED
    assert "cancelled" in str(result.error)
    assert_nothing_left(staging, source, tmp_path)


@pytest.mark.parametrize("produced", [3 * MiB, 5 * MiB])
def test_wrong_length_never_completes(tmp_path, staging, produced):
    """A producer whose output is not the virtual size (4 MiB here): the
    reader never gets the whole stream."""
    fifo = str(staging / "x.stream")
    streaming = stream_mod.Streaming(
        ["head", "-c", str(produced), "/dev/zero"],
        runner.Limits(timeout_seconds=30, cpu_seconds=30,
                      address_space_bytes=1024 * MiB),
        fifo, 4 * MiB)
    streaming.start()
    reader = Reader(fifo)
    reader.start()
    result = streaming.result(timeout=30)
    reader.join(10)
    assert result.state is stream_mod.State.FAILED
    assert reader.count < 4 * MiB
    assert ("ended after" in str(result.error)
            or "longer than the virtual size" in str(result.error))
    assert os.listdir(str(staging)) == []


def test_failure_before_any_byte_still_fails_the_reader(tmp_path, staging):
    """A producer that dies before its first byte: the reader must not
    see a clean, empty end with no size to check it against; it gets a
    byte, and the expected size is set before its end."""
    fifo = str(staging / "x.stream")
    told = []
    streaming = stream_mod.Streaming(
        ["false"], runner.Limits(timeout_seconds=30, cpu_seconds=30,
                                 address_space_bytes=1024 * MiB),
        fifo, 4 * MiB, on_reader=lambda: told.append(time.monotonic()))
    streaming.start()
    reader = Reader(fifo)
    reader.start()
    result = streaming.result(timeout=60)
    reader.join(10)
    assert result.state is stream_mod.State.FAILED
    assert "exited with status 1" in str(result.error)
    assert result.reader_read and 0 < reader.count < 4 * MiB
    assert told and told[0] <= reader.eof_at
    assert streaming.failure() is result.error


def test_stream_waits_for_the_cluster_cap_too(tmp_path, staging, source):
    """A streamed conversion takes the same slots as a file conversion:
    with ``coordination_url`` set and its backend down (a loopback port
    nothing listens on), the stream does not start, the environment fault
    says so, and nothing is left (no FIFO, the host slot free)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(exceptions.CoordinationUnavailable):
        start(tmp_path, staging, source,
              coordination_url="redis://127.0.0.1:%d" % port,
              slot_wait_seconds=30)
    assert_nothing_left(staging, source, tmp_path)
