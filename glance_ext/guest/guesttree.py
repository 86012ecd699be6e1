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

"""The guest's file tree: its mounts, with symlinks resolved inside it.

Why this exists: guest paths are full of symlinks (``/lib -> usr/lib``,
``multi-user.target.wants/ssh.service -> /lib/systemd/system/ssh.service``)
and ``/boot`` is often another filesystem. Resolution happens here, in the
guest's namespace only: an absolute target restarts at the GUEST root,
``..`` stops at the guest root, hops are counted (loops end with an error,
as the kernel's ELOOP), and nothing ever touches a host path.
"""

import posixpath
from typing import Dict, List, Optional, Tuple

from glance_ext.guest import filesystems
from glance_ext.exceptions import GuestPathError, NotInGuest

MAX_HOPS = 40


class GuestTree:
    def __init__(self, max_file_bytes: int = 256 * 1024,
                 max_dir_entries: int = 4096) -> None:
        self._mounts: Dict[str, filesystems.GuestFs] = {}
        self.max_file_bytes = max_file_bytes
        self.max_dir_entries = max_dir_entries
        self.notes: List[str] = []
        # Read failures (loops, corrupt directories): a check that saw one
        # cannot claim "pass" (see checks.run_checks).
        self.errors: List[str] = []

    def _failed(self, exc: Exception) -> None:
        self.errors.append(str(exc))
        self.notes.append(str(exc))

    def mount(self, mountpoint: str, fs: filesystems.GuestFs) -> None:
        # normpath keeps a leading "//" (POSIX allows it to mean something
        # else); guest mountpoints never do.
        self._mounts["/" + posixpath.normpath(mountpoint).lstrip("/")] = fs

    def _locate(self, path: str) -> Tuple[filesystems.GuestFs, str]:
        best = None
        for mp in self._mounts:
            if path == mp or mp == "/" or path.startswith(mp + "/"):
                if best is None or len(mp) > len(best):
                    best = mp
        if best is None:
            raise GuestPathError("no filesystem mounted for %s" % path)
        rel = path[len(best):] if best != "/" else path
        return self._mounts[best], rel or "/"

    def _lstat(self, path: str) -> Optional[filesystems.Stat]:
        fs, rel = self._locate(path)
        try:
            return fs.lstat(rel)
        except filesystems.FsError as exc:
            raise GuestPathError(str(exc))

    def resolve(self, path: str, follow_last: bool = True) -> str:
        """The symlink-free guest path that ``path`` names."""
        todo = [c for c in path.split("/") if c]
        done: List[str] = []
        hops = 0
        while todo:
            name = todo.pop(0)
            if name == ".":
                continue
            if name == "..":
                if done:
                    done.pop()
                continue
            candidate = "/" + "/".join(done + [name])
            st = self._lstat(candidate)
            if st is None:
                # Missing: the rest cannot exist either, but report the
                # path as asked so callers can say what is absent.
                done.append(name)
                done.extend(c for c in todo if c not in (".", ".."))
                return "/" + "/".join(done)
            if st.kind == "link" and (todo or follow_last):
                hops += 1
                if hops > MAX_HOPS:
                    raise GuestPathError(
                        "too many levels of symbolic links resolving %s "
                        "(a symlink loop in the guest)" % path)
                target = st.link_target or ""
                if target.startswith("/"):
                    done = []
                todo = [c for c in target.split("/") if c] + todo
                continue
            if todo and st.kind != "dir":
                done.append(name)
                done.extend(todo)
                return "/" + "/".join(done)
            done.append(name)
        return "/" + "/".join(done)

    def stat(self, path: str) -> Optional[filesystems.Stat]:
        """Stat after resolving every symlink; None if it does not exist."""
        return self._lstat(self.resolve(path))

    def lstat(self, path: str) -> Optional[filesystems.Stat]:
        return self._lstat(self.resolve(path, follow_last=False))

    def exists(self, path: str) -> bool:
        try:
            return self.stat(path) is not None
        except GuestPathError as exc:
            self._failed(exc)
            return False

    def is_file(self, path: str) -> bool:
        try:
            st = self.stat(path)
        except GuestPathError as exc:
            self._failed(exc)
            return False
        return st is not None and st.kind == "file"

    def read(self, path: str, max_bytes: Optional[int] = None) -> bytes:
        """File content (bounded); GuestPathError if absent or unreadable."""
        real = self.resolve(path)
        st = self._lstat(real)
        if st is None or st.kind != "file":
            raise NotInGuest("%s is not a regular file" % path)
        fs, rel = self._locate(real)
        limit = max_bytes if max_bytes is not None else self.max_file_bytes
        try:
            data, truncated = fs.read(rel, limit)
        except filesystems.FsError as exc:
            raise GuestPathError(str(exc))
        if truncated and max_bytes is None:
            # Only an unexpected cut is worth a note; callers that ask for
            # a header (ELF) want exactly that much.
            self.notes.append("%s: read only the first %d bytes"
                              % (path, limit))
        return data

    def open(self, path: str):
        """A guest file as a bounded, read-only file object."""
        real = self.resolve(path)
        st = self._lstat(real)
        if st is None or st.kind != "file":
            raise NotInGuest("%s is not a regular file" % path)
        fs, rel = self._locate(real)
        try:
            return fs.open(rel)
        except filesystems.FsError as exc:
            raise GuestPathError(str(exc))

    def read_text(self, path: str, max_bytes: Optional[int] = None
                  ) -> Optional[str]:
        """Text of a file, or None when it is absent or unreadable."""
        try:
            return self.read(path, max_bytes).decode("utf-8", "replace")
        except NotInGuest:
            return None
        except GuestPathError as exc:
            # A loop or an unreadable file is worth telling the operator.
            self._failed(exc)
            return None

    def listdir(self, path: str) -> List[str]:
        """Names in a directory (bounded); [] when absent."""
        try:
            real = self.resolve(path)
            st = self._lstat(real)
        except GuestPathError as exc:
            self._failed(exc)
            return []
        if st is None or st.kind != "dir":
            return []
        fs, rel = self._locate(real)
        try:
            names, truncated = fs.listdir(rel, self.max_dir_entries)
        except filesystems.FsError as exc:
            self._failed(GuestPathError("cannot list %s: %s" % (path, exc)))
            return []
        if truncated:
            self.notes.append("%s has more than %d entries; the rest were "
                              "not read" % (path, self.max_dir_entries))
        return names
