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

"""Symlink resolution inside the guest, on an in-memory filesystem with
the same interface as the libyal adapter."""

import pytest

from glance_ext.guest import filesystems
from glance_ext.guest import guesttree


class MemFs:
    """path -> ("file", bytes) | ("dir", None) | ("link", target)."""

    def __init__(self, entries) -> None:
        self.entries = {"/": ("dir", None)}
        self.entries.update(entries)
        self.lookups = 0

    def lstat(self, path):
        self.lookups += 1
        kind, value = self.entries.get(path, (None, None))
        if kind is None:
            return None
        if kind == "link":
            return filesystems.Stat("link", len(value), value)
        return filesystems.Stat(kind, len(value or b""))

    def read(self, path, max_bytes):
        data = self.entries[path][1]
        return data[:max_bytes], len(data) > max_bytes

    def listdir(self, path, max_entries):
        prefix = path.rstrip("/") + "/"
        names = sorted(p[len(prefix):] for p in self.entries
                       if p.startswith(prefix) and p != prefix and
                       "/" not in p[len(prefix):])
        return names[:max_entries], len(names) > max_entries


def _tree(entries, mounts=None):
    tree = guesttree.GuestTree(max_file_bytes=1024, max_dir_entries=3)
    tree.mount("/", MemFs(entries))
    for mp, fs in (mounts or {}).items():
        tree.mount(mp, fs)
    return tree


ROOT = {"/usr": ("dir", None), "/usr/lib": ("dir", None),
        "/usr/lib/os-release": ("file", b"ID=debian\n"),
        "/lib": ("link", "usr/lib"), "/etc": ("dir", None),
        "/etc/os-release": ("link", "../usr/lib/os-release")}


def test_relative_and_directory_links():
    tree = _tree(ROOT)
    assert tree.resolve("/etc/os-release") == "/usr/lib/os-release"
    assert tree.resolve("/lib/os-release") == "/usr/lib/os-release"
    assert tree.read("/etc/os-release") == b"ID=debian\n"
    assert tree.resolve("/etc/os-release", follow_last=False) == \
        "/etc/os-release"


def test_dotdot_and_absolute_targets_stop_at_guest_root():
    tree = _tree(dict(ROOT, **{
        "/etc/a": ("link", "../../../../../../usr/lib/os-release"),
        "/etc/b": ("link", "/../../usr/./lib/../lib/os-release")}))
    assert tree.resolve("/etc/a") == "/usr/lib/os-release"
    assert tree.resolve("/etc/b") == "/usr/lib/os-release"


def test_loop_is_an_error():
    tree = _tree(dict(ROOT, **{"/etc/x": ("link", "y"),
                               "/etc/y": ("link", "/etc/x")}))
    with pytest.raises(guesttree.GuestPathError, match="symbolic links"):
        tree.resolve("/etc/x")
    assert tree.read_text("/etc/x") is None
    assert any("symbolic links" in n for n in tree.notes)
    assert not tree.exists("/etc/x")


def test_absent_file_is_silent():
    tree = _tree(ROOT)
    assert tree.read_text("/etc/nothing") is None
    assert tree.notes == []


def test_mount_crossing_through_link():
    boot = MemFs({"/grub": ("dir", None),
                  "/grub/grub.cfg": ("file", b"console=ttyS0")})
    tree = _tree(dict(ROOT, **{"/boot": ("dir", None),
                               "/etc/grub.cfg": ("link",
                                                 "../boot/grub/grub.cfg")}),
                 {"/boot": boot})
    assert tree.read("/etc/grub.cfg") == b"console=ttyS0"
    assert tree.listdir("/boot/grub") == ["grub.cfg"]


def test_bounds():
    tree = _tree(dict(ROOT, **{"/etc/big": ("file", b"x" * 5000),
                               "/d": ("dir", None),
                               **{"/d/%d" % i: ("file", b"") for i in
                                  range(10)}}))
    assert len(tree.read("/etc/big")) == 1024
    assert "/etc/big: read only the first 1024 bytes" in tree.notes
    assert len(tree.listdir("/d")) == 3
    assert any("more than 3 entries" in n for n in tree.notes)
    # An explicit size (a header) is not a truncation worth a note.
    tree.notes.clear()
    assert tree.read("/etc/big", 64) == b"x" * 64
    assert tree.notes == []


def test_component_through_a_file():
    tree = _tree(ROOT)
    assert tree.stat("/usr/lib/os-release/x") is None
