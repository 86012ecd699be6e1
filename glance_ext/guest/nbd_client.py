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

"""A minimal, read-only NBD client over a unix socket.

Why hand-written: the guest engine reads the virtual disk through qemu
itself (``qemu-nbd``), because only qemu reads every qcow2 variant
correctly (compressed clusters, zstd, extended_l2). The maintained NBD
client is libnbd, whose Python binding is not on PyPI (only distribution
packages), and the PyPI package named ``nbd`` is unrelated. The part of
the protocol needed here is small: the fixed-newstyle handshake with
``NBD_OPT_GO``, ``NBD_CMD_READ`` with simple replies, and ``NBD_CMD_DISC``.
The protocol is documented in the NBD project's ``proto.md``.
"""

import socket
import struct
from typing import Optional
from glance_ext.exceptions import NbdConnectError, NbdError

NBDMAGIC = 0x4E42444D41474943          # "NBDMAGIC"
IHAVEOPT = 0x49484156454F5054          # "IHAVEOPT"
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698

FLAG_FIXED_NEWSTYLE = 1 << 0
FLAG_NO_ZEROES = 1 << 1

OPT_GO = 7
REP_ACK = 1
REP_INFO = 3
REP_FLAG_ERROR = 1 << 31
INFO_EXPORT = 0

CMD_READ = 0
CMD_DISC = 2

# A reply to an option is at most a few KiB; refuse anything larger so a
# misbehaving server cannot make us allocate.
MAX_OPTION_REPLY = 64 * 1024
# qemu-nbd accepts reads up to 32 MiB; stay well below.
MAX_READ = 4 * 1024 * 1024


class NbdClient:
    """One connection to one export; not thread-safe (one request at a time)."""

    def __init__(self, socket_path: str, export_name: str = "",
                 timeout: float = 30.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._handle = 0
        self.size: Optional[int] = None
        try:
            self._sock.connect(socket_path)
        except OSError as exc:
            self._sock.close()
            raise NbdConnectError("cannot connect to %s: %s"
                                  % (socket_path, exc))
        try:
            self._handshake(export_name)
        except (OSError, struct.error) as exc:
            self._sock.close()
            raise NbdError("NBD handshake with %s failed: %s"
                           % (socket_path, exc))
        except NbdError:
            self._sock.close()
            raise

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self._sock.recv(min(n - len(buf), 1024 * 1024))
            if not chunk:
                raise NbdError("NBD server closed the connection")
            buf += chunk
        return bytes(buf)

    def _handshake(self, export_name: str) -> None:
        magic, opt_magic, flags = struct.unpack(">QQH", self._recv(18))
        if magic != NBDMAGIC or opt_magic != IHAVEOPT:
            raise NbdError("not a newstyle NBD server")
        if not flags & FLAG_FIXED_NEWSTYLE:
            raise NbdError("NBD server lacks fixed newstyle negotiation")
        client_flags = FLAG_FIXED_NEWSTYLE | (flags & FLAG_NO_ZEROES)
        self._sock.sendall(struct.pack(">I", client_flags))
        name = export_name.encode()
        data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
        self._sock.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, len(data))
                           + data)
        while True:
            magic, option, rtype, length = struct.unpack(">QIII",
                                                         self._recv(20))
            if magic != REPLY_MAGIC or option != OPT_GO:
                raise NbdError("malformed NBD option reply")
            if length > MAX_OPTION_REPLY:
                raise NbdError("NBD option reply too large (%d)" % length)
            payload = self._recv(length)
            if rtype & REP_FLAG_ERROR:
                raise NbdError("NBD server refused export %r: %s"
                               % (export_name,
                                  payload.decode("utf-8", "replace")))
            if rtype == REP_INFO and len(payload) >= 12:
                info_type, = struct.unpack(">H", payload[:2])
                if info_type == INFO_EXPORT:
                    self.size, _tflags = struct.unpack(">QH", payload[2:12])
            elif rtype == REP_ACK:
                break
        if self.size is None:
            raise NbdError("NBD server sent no export size")

    def pread(self, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset`` of the export."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise NbdError("read of %d bytes at %d is outside the %d-byte "
                           "disk" % (length, offset, self.size))
        out = bytearray()
        while length > 0:
            n = min(length, MAX_READ)
            out += self._read_chunk(offset, n)
            offset += n
            length -= n
        return bytes(out)

    def _read_chunk(self, offset: int, length: int) -> bytes:
        self._handle += 1
        self._sock.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_READ,
                                       self._handle, offset, length))
        magic, error, handle = struct.unpack(">IIQ", self._recv(16))
        if magic != SIMPLE_REPLY_MAGIC or handle != self._handle:
            raise NbdError("malformed NBD read reply")
        if error:
            raise NbdError("NBD read of %d bytes at %d failed with errno %d"
                           % (length, offset, error))
        return self._recv(length)

    def close(self) -> None:
        try:
            self._handle += 1
            self._sock.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0,
                                           CMD_DISC, self._handle, 0, 0))
        except OSError:
            pass
        finally:
            self._sock.close()
