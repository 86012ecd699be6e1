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

"""Random access to the guest's virtual disk, bounded and counted.

Two sources: a raw image is read directly from its file; every container
format (qcow2, vmdk, vhd, vhdx, vdi) is read through qemu itself, served by
``qemu-nbd`` on a private unix socket. qemu is the reference reader of its
formats (compressed and zstd clusters, extended_l2, streamOptimized
grains), so the engine never has a second, subtly different decoder.

Every byte the engine reads goes through ``BoundedDisk``: reads are
aligned to blocks, cached, counted, and refused once the per-image budget
is spent, so no crafted filesystem can make the engine read the whole
image. ``PartitionView`` exposes one byte range as the file-like object the
libyal filesystem readers expect.
"""

import collections
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Dict, List, Optional

from glance_ext.exceptions import (DiskError, QemuNbdUnavailable,
                                   ReadBudgetExceeded)
from glance_ext.guest import nbd_client
from glance_ext.qemu import formats

BLOCK = 64 * 1024

# Formats qemu-nbd serves; "raw" (and the Glance names that are raw bytes)
# are read from the file directly.
RAW_FORMATS = frozenset(("raw", "iso", "gpt", "ami"))
CONTAINER_FORMATS = frozenset(("qcow2", "vmdk", "vhd", "vhdx", "vdi"))
SUPPORTED_FORMATS = RAW_FORMATS | CONTAINER_FORMATS
# Drivers with a backing-file concept: the engine opens them with
# ``"backing": null`` so qemu never opens a second file.
_HAS_BACKING = frozenset(("qcow2", "vmdk"))


class _RawFile:
    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.size = os.fstat(self._fd).st_size

    def pread(self, offset: int, length: int) -> bytes:
        return os.pread(self._fd, length, offset)

    def close(self) -> None:
        os.close(self._fd)


class _QemuNbd:
    """qemu-nbd serving one image read-only on a socket in a private dir."""

    def __init__(self, path: str, disk_format: str, binary: str,
                 timeout: float) -> None:
        driver = formats.to_qemu(disk_format)
        spec: Dict[str, object] = {
            "driver": driver,
            "file": {"driver": "file", "filename": os.path.abspath(path)}}
        if driver in _HAS_BACKING:
            spec["backing"] = None
        self._dir = tempfile.mkdtemp(prefix="glance-ext-guest-")
        sock = os.path.join(self._dir, "nbd.sock")
        env = dict(os.environ, MALLOC_ARENA_MAX="2", LC_ALL="C")
        cmd = [binary, "--read-only", "--shared=1", "--socket=%s" % sock,
               "json:" + json.dumps(spec)]
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, env=env, close_fds=True)
        except OSError as exc:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise QemuNbdUnavailable(
                "cannot run %s: %s; install qemu-utils (the package of "
                "qemu-nbd; on RHEL qemu-img) on the Glance host or set "
                "[glance_ext_guest] qemu_nbd to its path"
                % (binary, exc.strerror or exc))
        # qemu-nbd creates the socket file before it listens on it, so
        # "refused" just means "not yet" while the process is alive.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._client = nbd_client.NbdClient(sock, timeout=timeout)
                break
            except nbd_client.NbdConnectError:
                pass
            except nbd_client.NbdError as exc:
                self.close()
                raise DiskError(str(exc))
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode("utf-8", "replace")
                self._cleanup()
                raise DiskError("qemu-nbd could not open the image as %s: %s"
                                % (disk_format, err.strip()[-300:]))
            if time.monotonic() > deadline:
                self.close()
                raise DiskError("qemu-nbd did not start within %ss" % timeout)
            time.sleep(0.005)

        self.size = self._client.size

    def pread(self, offset: int, length: int) -> bytes:
        try:
            return self._client.pread(offset, length)
        except (nbd_client.NbdError, OSError) as exc:
            raise DiskError("reading the virtual disk failed: %s" % exc)

    def _cleanup(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def image_bytes_read(self) -> Optional[int]:
        """Bytes qemu-nbd has read so far (image data and its metadata).

        From /proc/PID/io ``rchar``: every read(2)/pread(2) of the process,
        which here is the image file plus the 28-byte NBD requests.
        """
        try:
            with open("/proc/%d/io" % self._proc.pid) as fh:
                for line in fh:
                    if line.startswith("rchar:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            return None
        return None

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stderr:
            self._proc.stderr.close()
        self._cleanup()


class BoundedDisk:
    """The virtual disk, read in cached blocks under a byte budget."""

    def __init__(self, source, budget_bytes: int,
                 cache_blocks: int = 256) -> None:
        self._src = source
        self.size: int = source.size
        self.budget = budget_bytes
        self.bytes_read = 0
        self.reads = 0
        # Set to the error message once the budget ran out: libyal turns
        # the exception into its own IOError, so the engine asks here.
        self.exhausted: Optional[str] = None
        self._cache: "collections.OrderedDict[int, bytes]" = \
            collections.OrderedDict()
        self._cache_blocks = cache_blocks

    def _block(self, index: int) -> bytes:
        data = self._cache.get(index)
        if data is not None:
            self._cache.move_to_end(index)
            return data
        start = index * BLOCK
        length = min(BLOCK, self.size - start)
        if self.bytes_read + length > self.budget:
            self.exhausted = (
                "the inspection needed more than its read budget of %d KiB "
                "(raise [glance_ext_guest] read_budget_mb if the image is "
                "legitimate)" % (self.budget // 1024))
            raise ReadBudgetExceeded(self.exhausted)
        data = self._src.pread(start, length)
        if len(data) != length:
            raise DiskError("short read at %d: %d of %d bytes"
                            % (start, len(data), length))
        self.bytes_read += length
        self.reads += 1
        self._cache[index] = data
        if len(self._cache) > self._cache_blocks:
            self._cache.popitem(last=False)
        return data

    def pread(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset+length)``, clipped at the end of the disk."""
        if offset < 0:
            raise DiskError("negative offset %d" % offset)
        end = min(offset + max(length, 0), self.size)
        if offset >= end:
            return b""
        parts: List[bytes] = []
        pos = offset
        while pos < end:
            index = pos // BLOCK
            block = self._block(index)
            inner = pos - index * BLOCK
            take = min(end - pos, len(block) - inner)
            parts.append(block[inner:inner + take])
            pos += take
        return b"".join(parts)

    def image_bytes_read(self) -> Optional[int]:
        """Bytes read from the image file itself (with container
        metadata), when the source can tell; raw: the guest bytes."""
        probe = getattr(self._src, "image_bytes_read", None)
        return probe() if probe else self.bytes_read

    def close(self) -> None:
        self._src.close()


class PartitionView:
    """A byte range of the disk as a read-only file object (for libyal).

    Reads outside the range are clipped here, so a filesystem reader can
    never reach data beyond its own partition.
    """

    def __init__(self, disk: BoundedDisk, start: int, size: int) -> None:
        if start < 0 or start >= disk.size:
            raise DiskError("partition starts outside the disk")
        self._disk = disk
        self._start = start
        self._size = min(size, disk.size - start)
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        size = max(0, min(size, self._size - self._pos))
        data = self._disk.pread(self._start + self._pos, size)
        self._pos += len(data)
        return data

    def pread(self, offset: int, length: int) -> bytes:
        if offset >= self._size:
            return b""
        length = min(length, self._size - offset)
        return self._disk.pread(self._start + offset, length)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self._size + offset
        else:
            raise OSError("bad whence %r" % whence)
        if pos < 0:
            raise OSError("negative seek position")
        self._pos = pos
        return pos

    def tell(self) -> int:
        return self._pos

    def get_size(self) -> int:
        return self._size

    def close(self) -> None:
        """The view does not own the disk; closing it is a no-op."""


def open_disk(path: str, disk_format: str, *, budget_bytes: int,
              qemu_nbd: str = "qemu-nbd",
              timeout: float = 30.0) -> BoundedDisk:
    """Open the virtual disk of ``path`` (Glance ``disk_format``)."""
    if disk_format not in SUPPORTED_FORMATS:
        raise DiskError(
            "disk_format %r cannot be inspected; supported: %s"
            % (disk_format, ", ".join(sorted(SUPPORTED_FORMATS))))
    if disk_format in RAW_FORMATS:
        try:
            source = _RawFile(path)
        except OSError as exc:
            raise DiskError("cannot open %s: %s" % (path, exc.strerror))
    else:
        source = _QemuNbd(path, disk_format, qemu_nbd, timeout)
    return BoundedDisk(source, budget_bytes)
