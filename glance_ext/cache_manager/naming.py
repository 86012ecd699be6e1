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

"""Classification of ``_base`` entries by nova's naming.

Nova decides what a cache file is from its name alone
(nova/virt/libvirt/imagecache.py ``_scan_base_images``). The rules here are
the same names but stricter: nova treats *any* 40-character name as an
original and any ``<40 chars>_<anything>`` as resized, so a stray file of
that length would be aged and removed. Here an entry that does not match a
name nova itself creates is UNKNOWN, reported, and never touched.
"""

import enum
import re
from typing import NamedTuple, Optional


class BaseClass(str, enum.Enum):
    ORIGINAL = 'original'          # sha1(image_id), as fetched from Glance
    RESIZED = 'resized'            # <sha1>_<GiB>
    RESIZED_LEGACY = 'resized-sm'  # <sha1>_sm (pre-Grizzly)
    SWAP = 'swap'                  # swap_<MiB>
    EPHEMERAL = 'ephemeral'        # ephemeral_<GiB>_<7 chars>
    PART = 'part'                  # <name>.part: interrupted download
    CONVERTED = 'converted'        # <name>.converted: interrupted convert
    LEGACY_INFO = 'legacy-info'    # <sha1>.info: pre-Icehouse checksum
    UNKNOWN = 'unknown'


# Classes whose files instances can be backed by: these are aged.
AGED_CLASSES = frozenset({BaseClass.ORIGINAL, BaseClass.RESIZED,
                          BaseClass.RESIZED_LEGACY, BaseClass.SWAP,
                          BaseClass.EPHEMERAL})
LEFTOVER_CLASSES = frozenset({BaseClass.PART, BaseClass.CONVERTED,
                              BaseClass.LEGACY_INFO})

_SHA1 = r'[0-9a-f]{40}'
_PATTERNS = (
    (re.compile(r'^(%s)$' % _SHA1), BaseClass.ORIGINAL),
    (re.compile(r'^(%s)_[0-9]+$' % _SHA1), BaseClass.RESIZED),
    (re.compile(r'^(%s)_sm$' % _SHA1), BaseClass.RESIZED_LEGACY),
    (re.compile(r'^swap_[0-9]+$'), BaseClass.SWAP),
    # The last part is nova's 7-character file-system hash
    # (nova.privsep.fs.get_file_extension_for_os_type).
    (re.compile(r'^ephemeral_[0-9]+_[0-9a-f]{7}$'), BaseClass.EPHEMERAL),
    (re.compile(r'^(%s)(?:_[0-9]+)?\.part$' % _SHA1), BaseClass.PART),
    (re.compile(r'^(%s)(?:_[0-9]+)?\.converted$' % _SHA1),
     BaseClass.CONVERTED),
    (re.compile(r'^(%s)\.info$' % _SHA1), BaseClass.LEGACY_INFO),
)


class Classified(NamedTuple):
    name: str
    kind: BaseClass
    # sha1 of the Glance image id for originals, resized and their leftovers.
    fingerprint: Optional[str]


def classify(name: str) -> Classified:
    """Tell what nova made ``name`` for, or UNKNOWN."""
    for pattern, kind in _PATTERNS:
        match = pattern.match(name)
        if match:
            fingerprint = match.group(1) if match.groups() else None
            return Classified(name, kind, fingerprint)
    return Classified(name, BaseClass.UNKNOWN, None)


def owning_base(name: str) -> Optional[str]:
    """Name of the cache entry a leftover belongs to (``x.part`` -> ``x``).

    Nova writes ``.part`` and ``.converted`` while holding the lock of the
    final name, so that is the lock to test before cleaning them.
    """
    for suffix in ('.part', '.converted', '.info'):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return None


def creation_locks(name: str) -> tuple:
    """Names of nova's locks that guard creating disks from ``name``.

    Nova creates a qcow2 disk on top of a resized base while holding the
    lock of the *original* (imagebackend.Qcow2.create_image locks
    ``filename``, the original's name, and makes ``<sha1>_<N>`` inside),
    while its own remover locks only the resized name. Taking both closes
    that gap.
    """
    kind = classify(name)
    if kind.kind in (BaseClass.RESIZED, BaseClass.RESIZED_LEGACY):
        return (name, kind.fingerprint)
    return (name,)
