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

"""Finding the codec of a file from its first bytes.

Magic bytes alone give false positives on raw disks (boot code is arbitrary
bytes), so each signature is checked beyond its first bytes where the
format allows: gzip's compression method, bzip2's block or end-of-stream
magic, xz's full six-byte magic, zstd's frame magic, zip's local header.
"""

from typing import Optional

HEAD_BYTES = 16

_BZ2_BLOCK = b"\x31\x41\x59\x26\x53\x59"   # pi: first block
_BZ2_EOS = b"\x17\x72\x45\x38\x50\x90"     # sqrt(pi): empty stream


def detect(head: bytes) -> Optional[str]:
    """Codec name for these leading bytes, or None when not compressed."""
    if head[:3] == b"\x1f\x8b\x08":
        return "gzip"
    if (head[:3] == b"BZh" and head[3:4] in b"123456789" and len(head) >= 10
            and head[4:10] in (_BZ2_BLOCK, _BZ2_EOS)):
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    return None


def detect_file(path: str) -> Optional[str]:
    with open(path, "rb") as fh:
        return detect(fh.read(HEAD_BYTES))
