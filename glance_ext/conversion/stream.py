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

"""Streaming conversion to raw: the output flows into a FIFO, never a file.

Glance's store upload reads the ``file_path`` the last plugin provides with
a plain sequential ``open()``/``read()``. A FIFO there lets the store upload
read the raw data while it is produced: the conversion runs under the
upload (whose hashing and writing take longer than the conversion) and no
raw copy is written to staging. qemu-img cannot write to a FIFO (its file
driver needs a regular, seekable file; ``qemu-img convert -n`` and
``qemu-img dd`` both refuse one), so the producer is ``nbdcopy`` (libnbd)
reading, in order, from a read-only ``qemu-nbd`` that serves the source in
any format qemu reads; holes come out as zeros written into the pipe (no
read from the source), as cheap as Glance's read of a sparse file's holes.
docs/convert.md has the measurements.

The data goes producer -> a private pipe -> (``os.splice``, no copy into
Python) -> the FIFO. Passing it through here is what makes the stream
safe:
- every byte is counted as it flows: the stream must be exactly the
  virtual size long;
- the last ``HOLD_BYTES`` are held back until the producer has exited
  with status 0 and the count is right. A failed or short stream ends
  without them, so the reader sees fewer bytes than the size it was told
  to expect (``Streaming.on_reader``: the plugin sets the image's size,
  which Glance checks after its upload) and the upload fails;
- a reader that never opens the FIFO (``open_timeout``), stops reading
  (the overall timeout) or goes away (EPIPE) ends the stream within a
  bounded time; the producer is killed through the same runner as every
  conversion (``process.run_group``: prlimit, nice/ionice, pdeathsig,
  timeout, cancel) and the FIFO is removed;
- ``rate_limit_mb`` is applied here (nbdcopy has no rate limit).
"""

import dataclasses
import enum
import errno
import fcntl
import os
import select
import stat
import struct
import termios
import threading
import time
from typing import Callable, List, Optional, Sequence

from oslo_log import log as logging
from oslo_utils import units

from glance_ext.common import files
from glance_ext import exceptions
from glance_ext.conversion import process
from glance_ext.conversion import progress as progress_mod
from glance_ext.qemu import formats
from glance_ext.qemu import runner

LOG = logging.getLogger(__name__)

# Held back until the producer has succeeded (see the module docstring).
HOLD_BYTES = 4096
CHUNK = units.Mi
# Linux: a bigger pipe means fewer wake-ups of producer and reader.
_F_SETPIPE_SZ = 1031
PIPE_SIZE = units.Mi
POLL_SECONDS = 0.5
FAIL_READER_SECONDS = 60


class Path(enum.Enum):
    """How the converted data reaches the store upload."""
    STREAM = "stream"
    FILE = "file"


@dataclasses.dataclass(frozen=True)
class PathChoice:
    path: Path
    reason: str


def choose_path(*, enabled: bool, target_format: str, stores: Sequence[str],
                plugins_after: Sequence[str], compare: bool,
                missing_tools: Sequence[str], size_check: bool
                ) -> PathChoice:
    """Stream or write a file? Streaming serves only where its promises
    hold: a raw output (nbdcopy writes raw), one store (each store upload
    reads ``file_path`` again, a FIFO only once), nobody after us reading
    the output, no ``compare`` (it needs the output as a file), the tools
    there, and a Glance whose upload can be told the size to expect."""
    if target_format != "raw":
        return PathChoice(Path.FILE, "the target format is %s; only raw "
                          "outputs stream" % target_format)
    if not enabled:
        return PathChoice(Path.FILE, "streaming is disabled "
                          "(stream_raw = false)")
    if len(stores) > 1:
        return PathChoice(Path.FILE, "%d stores: each store upload reads "
                          "the output again" % len(stores))
    if plugins_after:
        return PathChoice(Path.FILE, "%s runs after glance_ext_convert and "
                          "reads the output" % ", ".join(plugins_after))
    if compare:
        return PathChoice(Path.FILE, "compare = true needs the output as a "
                          "file")
    if missing_tools:
        return PathChoice(Path.FILE, "%s not found on this host" %
                          ", ".join(missing_tools))
    if not size_check:
        return PathChoice(Path.FILE, "this Glance's import action wrapper "
                          "cannot be told the size the upload must read")
    return PathChoice(Path.STREAM, "one store, raw target")


def producer_command(nbdcopy: str, qemu_nbd: str, src: str,
                     source_format: str, tuning: process.Tuning) -> List[str]:
    """``nbdcopy`` reading a read-only ``qemu-nbd`` it starts itself
    (socket activation, so no socket path to clean up) and writing the raw
    data to its stdout in order. ``ionice`` first; the rlimits and nice of
    ``process.spawn`` are inherited by qemu-nbd."""
    return process.io_priority(tuning) + [
        nbdcopy, "--", "[", qemu_nbd, "--read-only", "--format",
        formats.to_qemu(source_format), "--cache=writeback", src, "]", "-"]


class State(enum.Enum):
    WAITING = "waiting for the reader"
    STREAMING = "streaming"
    DONE = "done"
    FAILED = "failed"


@dataclasses.dataclass
class Result:
    state: State
    bytes_sent: int
    seconds: float
    reader_opened: bool
    # The reader read from the stream: the store has been written to.
    reader_read: bool = False
    error: Optional[BaseException] = None


class Streaming:
    """One streaming conversion: ``start()`` runs it in a thread that
    waits for the reader, runs the producer and pumps; ``result()`` waits
    for its end. ``on_reader`` is called once the reader is reading (so
    past Glance's size check) and before the tail is sent; ``release``
    (the conversion slot) when it ends, either way."""

    def __init__(self, command: Sequence[str], bounds: runner.Limits,
                 fifo: str, virtual_size: int, *,
                 cpu: process.CpuPriority = process.CpuPriority(),
                 open_timeout: float = 60.0, rate_limit_mb: int = 0,
                 on_progress: Optional[progress_mod.Callback] = None,
                 interval: float = 5.0,
                 should_stop: Optional[Callable[[], bool]] = None,
                 on_reader: Optional[Callable[[], None]] = None,
                 release: Optional[Callable[[], None]] = None) -> None:
        self.command = list(command)
        self.bounds = bounds
        self.fifo = fifo
        self.virtual_size = virtual_size
        self.cpu = cpu
        self.open_timeout = open_timeout
        self.rate = rate_limit_mb * units.Mi
        self.on_progress = on_progress
        self.interval = interval
        self.should_stop = should_stop
        self.on_reader = on_reader
        self.release = release
        self.sent = 0
        self.state = State.WAITING
        self._cancel = threading.Event()
        self._stop_producer = threading.Event()
        self._done = threading.Event()
        self._result: Optional[Result] = None
        self._thread: Optional[threading.Thread] = None
        self._reader_opened = False
        self._tail = b""
        self._reading = False
        # Set before the FIFO is closed, so a reader that sees the end
        # can ask why (``failure``).
        self.error: Optional[BaseException] = None

    # -- control ---------------------------------------------------------
    def start(self) -> None:
        os.mkfifo(self.fifo, 0o600)
        self._thread = threading.Thread(
            target=self._run, name="glance-ext-stream-%s"
            % os.path.basename(self.fifo), daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop it (a revert, the import over): the producer is killed,
        the FIFO removed."""
        self._cancel.set()

    def result(self, timeout: Optional[float] = None) -> Optional[Result]:
        """The outcome, once over (None if still running after
        ``timeout``)."""
        self._done.wait(timeout)
        return self._result

    def failure(self) -> Optional[BaseException]:
        """Why the stream failed, or None (running or done)."""
        return self.error if self.state is State.FAILED else None

    @property
    def percent(self) -> float:
        return 100.0 * self.sent / self.virtual_size \
            if self.virtual_size else 100.0

    # -- the thread ------------------------------------------------------
    def _run(self) -> None:
        start = time.monotonic()
        error: Optional[BaseException] = None
        fifo_fd = -1
        try:
            fifo_fd = self._open_reader(start)
            self._reader_opened = True
            self.state = State.STREAMING
            self._stream(fifo_fd, start)
            self.state = State.DONE
        except BaseException as exc:
            error = self.error = exc
            self.state = State.FAILED
            LOG.warning("Streaming conversion into %s failed: %s",
                        self.fifo, exc)
            if fifo_fd >= 0 and not self._cancel.is_set():
                self._fail_reader(fifo_fd)
        finally:
            # Gone before the reader sees the end: nothing is left when
            # the upload finishes.
            _unlink(self.fifo)
            if fifo_fd >= 0:
                os.close(fifo_fd)
            if self.release is not None:
                try:
                    self.release()
                except Exception:
                    LOG.exception("could not release the conversion slot")
            self._result = Result(self.state, self.sent,
                                  time.monotonic() - start,
                                  self._reader_opened, self._reading, error)
            self._done.set()

    def _open_reader(self, start: float) -> int:
        """The FIFO's write end, once the reader has opened it. Polled
        with O_NONBLOCK (ENXIO until then), so a reader that never comes
        ends it after ``open_timeout``."""
        while True:
            if self._cancel.is_set():
                raise exceptions.qemu_error(
                    "cancelled", "the streaming conversion was cancelled "
                    "before the store upload opened the stream")
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK
                             | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise exceptions.qemu_error(
                        "failed", "the stream %s cannot be opened (%s)"
                        % (os.path.basename(self.fifo),
                           exc.strerror or exc))
            else:
                if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                    os.close(fd)
                    raise exceptions.qemu_error(
                        "failed", "the stream was replaced by a file")
                _grow_pipe(fd)
                return fd
            if time.monotonic() - start >= self.open_timeout:
                raise exceptions.qemu_error(
                    "timeout", "the store upload did not open the stream "
                    "within %ds" % int(self.open_timeout))
            time.sleep(0.05)

    def _stream(self, fifo_fd: int, start: float) -> None:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        _grow_pipe(read_fd)
        outcome: List[object] = []

        def produce() -> None:
            try:
                outcome.append(process.run_group(
                    [self.command], self.bounds, self.virtual_size,
                    on_progress=self.on_progress, interval=self.interval,
                    should_stop=self._producer_should_stop, cpu=self.cpu,
                    child_stdout=write_fd, progress_of=lambda: self.percent,
                    what="nbdcopy"))
            except BaseException as exc:
                outcome.append(exc)

        producer = threading.Thread(target=produce, daemon=True,
                                    name="glance-ext-stream-producer")
        producer.start()
        try:
            self._pump(read_fd, fifo_fd, start)
        except BaseException as exc:
            self._stop_producer.set()
            producer.join()
            # The stream ended early because the producer failed (killed,
            # timed out): its error says why. A producer we stopped
            # (reader gone, cancel) only says "cancelled": keep ours.
            if outcome and isinstance(outcome[0], BaseException) and \
                    not isinstance(outcome[0],
                                   exceptions.QemuImgCancelled):
                raise outcome[0] from exc
            raise
        finally:
            # The producer ends on its own (EOF seen), or is killed: the
            # runner's timeout, or _stop_producer at its next poll.
            producer.join()
            os.close(read_fd)
        if outcome and isinstance(outcome[0], BaseException):
            raise outcome[0]
        if not outcome:
            raise exceptions.qemu_error("failed", "nbdcopy did not report")
        # The producer exited 0 and sent exactly the virtual size: only
        # now does the reader get the last bytes.
        self._send_tail(fifo_fd, start)
        if self.sent != self.virtual_size:
            raise exceptions.qemu_error(
                "failed", "the converted stream is %d bytes, the virtual "
                "size %d" % (self.sent, self.virtual_size))

    def _reader_reading(self, fifo_fd: int) -> bool:
        """Whether the reader has read from the FIFO (bytes sent minus
        bytes still in it); the first time, ``on_reader``. Glance checks
        the image's size against the FIFO's st_size between its open()
        and its first read(), so the size to expect is set only once the
        reader reads."""
        if self._reading:
            return True
        try:
            queued = struct.unpack("i", fcntl.ioctl(
                fifo_fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:
            return False
        if self.sent - queued <= 0:
            return False
        self._reading = True
        if self.on_reader is not None:
            self.on_reader()
        return True

    def _fail_reader(self, fifo_fd: int) -> None:
        """The stream failed before the reader read anything: it must not
        see a clean end (0 bytes, and no size set to check them against).
        Send one byte and wait until it is read, so the expected size is
        set (``on_reader``) before the end; Glance then fails the upload
        with our error. Bounded: a reader that neither reads nor goes
        away within FAIL_READER_SECONDS is left to its end."""
        if self._reading:
            return
        try:
            os.write(fifo_fd, b"\0")
            self.sent += 1
        except BlockingIOError:
            pass                    # full: it has bytes to read anyway
        except BrokenPipeError:
            return
        out = select.poll()
        out.register(fifo_fd, select.POLLOUT)
        deadline = time.monotonic() + FAIL_READER_SECONDS
        while time.monotonic() < deadline:
            if self._reader_reading(fifo_fd):
                return
            events = out.poll(50)
            if events and events[0][1] & select.POLLERR:
                return              # the reader went away
            time.sleep(0.05)
        LOG.error("The reader of %s neither read nor closed it within "
                  "%ds after the stream failed", self.fifo,
                  FAIL_READER_SECONDS)

    def _send_tail(self, fifo_fd: int, start: float) -> None:
        # Not before the reader has been told what to expect.
        while not self._reader_reading(fifo_fd):
            self._check(start)
            time.sleep(0.05)
        view = memoryview(self._tail)
        while view:
            self._check(start)
            try:
                n = os.write(fifo_fd, view)
            except BlockingIOError:
                select.select([], [fifo_fd], [], POLL_SECONDS)
                continue
            except BrokenPipeError:
                raise self._reader_gone()
            self.sent += n
            view = view[n:]

    def _producer_should_stop(self) -> bool:
        return self._stop_producer.is_set() or self._cancel.is_set() or \
            bool(self.should_stop and self.should_stop())

    def _deadline_passed(self, start: float) -> bool:
        # The runner kills the producer at the timeout; a reader that
        # stopped reading would keep the pump waiting, so it has the same
        # limit plus a little.
        return time.monotonic() - start > self.bounds.timeout_seconds + 10

    def _pump(self, src: int, dst: int, start: float) -> None:
        """Move the producer's output to the FIFO, counted, all but the
        tail, which is kept in ``_tail`` until the producer has succeeded
        (``_stream`` sends it)."""
        total = self.virtual_size
        # Something must go before the tail so the reader is seen reading.
        hold = min(HOLD_BYTES, total // 2)
        limit = total - hold
        poller = select.poll()
        poller.register(src, select.POLLIN)
        out_poller = select.poll()
        out_poller.register(dst, select.POLLOUT)
        began = time.monotonic()
        while self.sent < limit:
            self._check(start)
            if not poller.poll(POLL_SECONDS * 1000):
                continue
            if not self._wait_writable(out_poller, start):
                continue
            want = min(CHUNK, limit - self.sent)
            try:
                moved = os.splice(src, dst, want,
                                  flags=os.SPLICE_F_NONBLOCK
                                  | os.SPLICE_F_MOVE)
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise self._reader_gone()
            if moved == 0:
                raise exceptions.qemu_error(
                    "failed", "the converted stream ended after %d of %d "
                    "bytes" % (self.sent, total))
            self.sent += moved
            self._reader_reading(dst)
            self._throttle(began)
        # The tail: read it here, then the producer must end with EOF.
        tail = b""
        while True:
            self._check(start)
            if not poller.poll(POLL_SECONDS * 1000):
                continue
            data = os.read(src, CHUNK)
            if not data:
                break
            tail += data
            if len(tail) > hold:
                raise exceptions.qemu_error(
                    "failed", "the converted stream is longer than the "
                    "virtual size (%d bytes)" % total)
        if len(tail) != hold:
            raise exceptions.qemu_error(
                "failed", "the converted stream ended after %d of %d bytes"
                % (self.sent + len(tail), total))
        self._tail = tail

    def _check(self, start: float) -> None:
        if self._cancel.is_set():
            raise exceptions.qemu_error("cancelled",
                                        "the streaming conversion was "
                                        "cancelled")
        if self._deadline_passed(start):
            raise exceptions.qemu_error(
                "timeout", "the stream did not finish within %ds"
                % int(self.bounds.timeout_seconds))

    def _wait_writable(self, out_poller: "select.poll", start: float
                       ) -> bool:
        events = out_poller.poll(POLL_SECONDS * 1000)
        if not events:
            return False
        if events[0][1] & select.POLLERR:
            raise self._reader_gone()
        return True

    def _reader_gone(self) -> exceptions.GlanceExtError:
        return exceptions.qemu_error(
            "failed", "the store upload stopped reading the stream after "
            "%d of %d bytes" % (self.sent, self.virtual_size))

    def _throttle(self, began: float) -> None:
        if not self.rate:
            return
        ahead = self.sent / float(self.rate) - (time.monotonic() - began)
        if ahead > 0:
            time.sleep(min(ahead, POLL_SECONDS))


def _grow_pipe(fd: int) -> None:
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass


def _unlink(path: str) -> None:
    files.unlink_quietly(path, "the stream ")
