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

"""Guest architecture from the ELF header of the guest's own binaries.

The header's ``e_machine`` (with the class and byte order) names the CPU;
reading the first 64 bytes of ``/bin/sh`` is enough and cannot be fooled by
a file name, unlike guessing from kernel file names.
"""

import struct
from typing import Optional

# (e_machine, ELF class, byte order) -> architecture name as nova/libvirt
# spell it (``hw_architecture``).
_MACHINES = {
    (0x03, 1): "i686",
    (0x3E, 2): "x86_64",
    (0x28, 1): "armv7l",
    (0xB7, 2): "aarch64",
    (0x15, 2): "ppc64",
    (0x16, 2): "s390x",
    (0xF3, 2): "riscv64",
    (0x102, 2): "loongarch64",
}

# Binaries looked at, in order; the first that is a readable ELF wins.
PROBE_PATHS = ("/bin/sh", "/usr/bin/bash", "/bin/bash", "/usr/bin/ls",
               "/bin/ls", "/sbin/init", "/usr/lib/systemd/systemd",
               "/usr/bin/true")


def architecture(header: bytes) -> Optional[str]:
    """The architecture an ELF header is for; None if not ELF or unknown."""
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    elf_class, data = header[4], header[5]
    if data not in (1, 2):
        return None
    machine, = struct.unpack("<H" if data == 1 else ">H", header[18:20])
    arch = _MACHINES.get((machine, elf_class))
    if arch == "ppc64" and data == 1:
        return "ppc64le"
    return arch
