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

"""qemu-img's own format probe, asked as safely as a test can.

qemu's probe reads the first 2 KiB of the file (zeros past the end) and
its name, so a copy of those 2 KiB under the same name gets the same
answer. The copy sits alone in a fresh directory, so a relative file name
inside the bytes resolves to nothing; bytes that hold an absolute path,
``../`` or a qemu protocol prefix (``json:``, ``nbd:``...) are not asked at
all. The answer is the first format driver qemu-img opens, read from its
``bdrv_open_common`` trace event: it is printed before the driver opens
anything, so it is there even when the open then fails. qemu-img runs
through the project's runner (prlimit and a timeout).
"""

import os
import re
import tempfile
from typing import Optional

from glance_ext.qemu import probe
from glance_ext.qemu import runner

_PROTOCOL = re.compile(
    rb"(?<![a-z0-9_-])(?:nbd|ssh|https?|ftps?|gluster|iscsi|iser|nfs|rbd|"
    rb"vvfat|fat|json|null-co|null-aio|nvme|blkdebug|blkverify|blklogwrites|"
    rb"quorum|throttle|file|host_device|host_cdrom|compress|copy-on-read|"
    rb"preallocate|replication|snapshot-access|copy-before-write):")
_PATH = re.compile(rb"\.\./|(?:^|[^A-Za-z0-9_.+-])/[A-Za-z0-9_.]")
_TRACE = re.compile(r'bdrv_open_common .* format_name "([^"]*)"')

QEMU = runner.QemuImg(limits=runner.Limits(cpu_seconds=8,
                                           timeout_seconds=30))


# cloop's magic is a shell line naming /bin/sh and /dev/cloop: text the
# cloop driver never opens, and after which no other driver can match.
_CLOOP_MAGIC = (b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r "
                b"-t iso9660 /dev/cloop $1\n")


def safe_to_ask(head: bytes) -> bool:
    buf = bytes(head[:probe.PROBE_BYTES])
    known = 0
    while known < min(len(buf), len(_CLOOP_MAGIC)) and \
            buf[known] == _CLOOP_MAGIC[known]:
        known += 1
    buf = buf[known:]
    return not _PROTOCOL.search(buf.lower()) and not _PATH.search(buf)


def qemu_answer(head: bytes, name: str, work_dir: str) -> Optional[str]:
    """The driver qemu-img 7.2 probes for a file starting with ``head``
    and named ``name``; None when it is not safe to ask."""
    if not safe_to_ask(head):
        return None
    directory = tempfile.mkdtemp(dir=work_dir)
    path = os.path.join(directory, os.path.basename(name))
    with open(path, "wb") as f:
        f.write(bytes(head[:probe.PROBE_BYTES]))
    try:
        res = QEMU.run(["--trace", "bdrv_open_common", "info", path],
                       ok_codes=(0, 1))
        output = res.stderr + res.stdout
    except runner.QemuImgError as exc:
        # qemu-img 7.2 aborts on some inputs after probing (an assertion in
        # vmdk_get_info for a descriptor whose extents it dropped); the
        # trace line came first.
        if exc.kind != "limit":
            raise
        output = exc.stderr
    for driver in _TRACE.findall(output):
        if driver != "file":
            return driver
    raise AssertionError("qemu-img showed no format driver:\n%s" % output)


def file_head(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(probe.PROBE_BYTES)
