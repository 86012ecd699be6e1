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

"""LVM2 volume groups, read through libvslvm.

libvslvm parses the PV label and the volume-group text metadata and maps
logical-volume offsets to the physical volume; it reads through the
engine's bounded ``PartitionView``, so LVM adds no unbounded read path.
Only volume groups whose physical volumes are all on this disk can be
read; that is the only case an uploaded image can have.
"""

import os
from typing import List, Tuple

import pyvslvm
from glance_ext.exceptions import LvmError


class LogicalVolumeView:
    """One logical volume as the file-like object fsprobe/libyal read."""

    def __init__(self, lv) -> None:
        self._lv = lv
        self._size = lv.get_size()
        self._pos = 0

    def get_size(self) -> int:
        return self._size

    def pread(self, offset: int, length: int) -> bytes:
        if offset >= self._size:
            return b""
        length = min(length, self._size - offset)
        try:
            return self._lv.read_buffer_at_offset(length, offset)
        except (IOError, OSError) as exc:
            raise LvmError(str(exc).strip().splitlines()[-1])

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        data = self.pread(self._pos, size)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos,
                os.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        """The handle owns the volume; nothing to close here."""


def logical_volumes(
        pv_view) -> Tuple[str, List[Tuple[str, LogicalVolumeView]]]:
    """(VG name, [(LV name, view)]) of the PV in ``pv_view``."""
    handle = pyvslvm.handle()
    try:
        handle.open_file_object(pv_view)
        handle.open_physical_volume_files_as_file_objects([pv_view])
        vg = handle.get_volume_group()
        out = []
        for index in range(vg.get_number_of_logical_volumes()):
            lv = vg.get_logical_volume(index)
            out.append((lv.get_name(), LogicalVolumeView(lv)))
        # The handle must outlive the views: keep it referenced by them.
        for _name, view in out:
            view.handle = handle
        return vg.get_name(), out
    except (IOError, OSError, RuntimeError, ValueError) as exc:
        text = str(exc).strip().splitlines()
        raise LvmError("cannot read the LVM volume group: %s"
                       % (text[-1] if text else exc.__class__.__name__))
