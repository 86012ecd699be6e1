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

"""One small interface over the libyal filesystem readers.

libfsext (ext2/3/4), libfsxfs, libfsfat and libfsntfs read a filesystem
from any file-like object without mounting, in user space; the engine hands
them a ``PartitionView`` so every byte still goes through the bounded,
counted disk. Each reader has a slightly different API; ``GuestFs`` hides
that and adds the bounds the engine relies on (at most N bytes of a file,
at most N directory entries). Paths here are inside ONE filesystem and are
never resolved through symlinks: ``guesttree`` does that, inside the guest.
"""

import dataclasses
import stat
from typing import List, Optional, Tuple

import pyfsext
import pyfsfat
import pyfsntfs
import pyfsxfs
from glance_ext.exceptions import FsError

READERS = {
    "ext2": pyfsext, "ext3": pyfsext, "ext4": pyfsext,
    "xfs": pyfsxfs, "vfat": pyfsfat, "ntfs": pyfsntfs,
}
# What the engine can identify but not open (reported, never guessed).
UNREADABLE = ("btrfs", "crypto_LUKS", "LVM2_member", "swap", "iso9660")

FAT_DIRECTORY = 0x10
NTFS_DIRECTORY = 0x10
NTFS_REPARSE_POINT = 0x400


@dataclasses.dataclass
class Stat:
    kind: str              # "file", "dir", "link" or "other"
    size: int
    link_target: Optional[str] = None
    mode: Optional[int] = None


class GuestFs:
    """An open filesystem of one partition (or logical volume)."""

    def __init__(self, fs_type: str, view) -> None:
        module = READERS.get(fs_type)
        if module is None:
            raise FsError("no reader for %s filesystems" % fs_type)
        self.fs_type = fs_type
        self._ntfs = module is pyfsntfs
        self._fat = module is pyfsfat
        self._vol = module.volume()
        try:
            self._vol.open_file_object(view)
        except (IOError, OSError, RuntimeError, ValueError) as exc:
            raise FsError("cannot open the %s filesystem: %s"
                          % (fs_type, _short(exc)))

    def _entry(self, path: str):
        # libfsntfs and libfsfat separate components with "\", the others
        # with "/".
        lookup = path.replace("/", "\\") if self._ntfs or self._fat \
            else path
        if lookup in ("", "/", "\\"):
            return self._vol.get_root_directory()
        try:
            return self._vol.get_file_entry_by_path(lookup)
        except (IOError, OSError, RuntimeError, ValueError) as exc:
            raise FsError("lookup of %s failed: %s" % (path, _short(exc)))

    def lstat(self, path: str) -> Optional[Stat]:
        """Stat ``path`` without following a final symlink; None if absent."""
        entry = self._entry(path)
        if entry is None:
            return None
        try:
            size = entry.get_size() or 0
            if self._fat:
                flags = entry.get_file_attribute_flags() or 0
                kind = "dir" if flags & FAT_DIRECTORY else "file"
                return Stat(kind, size)
            if self._ntfs:
                flags = entry.get_file_attribute_flags() or 0
                if flags & NTFS_REPARSE_POINT:
                    target = entry.get_symbolic_link_target()
                    if target:
                        return Stat("link", size, target.replace("\\", "/"))
                kind = "dir" if (flags & NTFS_DIRECTORY or
                                 entry.has_directory_entries_index()) \
                    else "file"
                return Stat(kind, size)
            mode = entry.get_file_mode()
        except (IOError, OSError, RuntimeError, ValueError) as exc:
            raise FsError("stat of %s failed: %s" % (path, _short(exc)))
        if stat.S_ISLNK(mode):
            target = entry.get_symbolic_link_target()
            return Stat("link", size, target, mode)
        if stat.S_ISDIR(mode):
            return Stat("dir", size, mode=mode)
        if stat.S_ISREG(mode):
            return Stat("file", size, mode=mode)
        return Stat("other", size, mode=mode)

    def read(self, path: str, max_bytes: int) -> Tuple[bytes, bool]:
        """At most ``max_bytes`` of a regular file; (data, truncated)."""
        entry = self._entry(path)
        if entry is None:
            raise FsError("%s does not exist" % path)
        try:
            size = entry.get_size() or 0
            want = min(size, max_bytes)
            data = entry.read_buffer_at_offset(want, 0) if want else b""
        except (IOError, OSError, RuntimeError, ValueError) as exc:
            raise FsError("reading %s failed: %s" % (path, _short(exc)))
        return data, size > max_bytes

    def open(self, path: str) -> "EntryFile":
        """A regular file as a read-only file object (for libregf).

        Reads go through the same bounded disk as everything else, so a
        reader that seeks around a large file (a registry hive) reads only
        the pages it needs.
        """
        entry = self._entry(path)
        if entry is None:
            raise FsError("%s does not exist" % path)
        return EntryFile(entry)

    def listdir(self, path: str, max_entries: int) -> Tuple[List[str], bool]:
        """Names in a directory, at most ``max_entries``; (names, truncated)."""
        entry = self._entry(path)
        if entry is None:
            raise FsError("%s does not exist" % path)
        try:
            count = entry.get_number_of_sub_file_entries()
            names = []
            for index in range(min(count, max_entries)):
                name = entry.get_sub_file_entry(index).get_name()
                if name not in (".", ".."):
                    names.append(name)
        except (IOError, OSError, RuntimeError, ValueError) as exc:
            raise FsError("listing %s failed: %s" % (path, _short(exc)))
        return names, count > max_entries

    def label(self) -> Optional[str]:
        try:
            return (self._vol.get_name() if self._ntfs
                    else self._vol.get_label()) or None
        except (IOError, OSError, RuntimeError, ValueError):
            return None

    def close(self) -> None:
        try:
            self._vol.close()
        except (IOError, OSError, RuntimeError):
            pass


class EntryFile:
    """A libyal file entry with the file-object methods libyal expects."""

    def __init__(self, entry) -> None:
        self._entry = entry
        self._size = entry.get_size() or 0
        self._pos = 0

    def get_size(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        size = max(0, min(size, self._size - self._pos))
        if not size:
            return b""
        try:
            data = self._entry.read_buffer_at_offset(size, self._pos)
        except (IOError, OSError, RuntimeError, ValueError) as exc:
            raise IOError(_short(exc))
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, self._size)[whence]
        if base + offset < 0:
            raise IOError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        """The entry belongs to the volume; nothing to close."""


def _short(exc: BaseException) -> str:
    # libyal error strings repeat the whole call chain; the last line says
    # what went wrong.
    text = str(exc).strip().splitlines()
    return text[-1] if text else exc.__class__.__name__
