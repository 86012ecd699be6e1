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

"""Before converting: how much space the output needs, and is it there.

Glance's image_conversion starts ``qemu-img convert`` blind; a large image
then fills the staging filesystem, failing this import and every other one
on the host. ``qemu-img measure`` gives the output size up front (for
sparse outputs the allocated size, which is what the disk must hold), and
the import is refused with a message that names the numbers.
"""

import dataclasses

from glance_ext.common.sizes import human
from glance_ext.common.space import free_bytes
from glance_ext.exceptions import InsufficientSpace
from glance_ext.qemu import runner


@dataclasses.dataclass(frozen=True)
class SpacePlan:
    required_bytes: int        # qemu-img measure "required"
    fully_allocated_bytes: int
    needed_bytes: int          # required + margin + reserve
    free_bytes: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def measure(qemu: runner.QemuImg, path: str, source_format: str,
            target_format: str) -> dict:
    """Bytes the output will occupy, as ``qemu-img measure`` reports them.

    qemu 7.2 can measure only qcow2 and raw outputs, and for raw it reports
    the full virtual size although ``convert -S`` writes a sparse file. The
    qcow2 figure (allocated guest data plus a little metadata) is the
    better estimate of what every sparse output occupies on disk, so it is
    used for all targets; the margin covers the other formats' metadata.
    """
    del target_format  # see above: one estimate fits every sparse output
    return qemu.measure(path, source_format, "qcow2")


def plan(qemu: runner.QemuImg, path: str, source_format: str,
         target_format: str, work_dir: str, margin_percent: int,
         reserve_bytes: int, fixed_size: bool = False) -> SpacePlan:
    """Measure the output and check ``work_dir``; raise InsufficientSpace.

    ``fixed_size``: the output variant allocates its whole virtual size
    (fixed VHD), so the fully-allocated figure is what will be written.
    """
    data = measure(qemu, path, source_format, target_format)
    required = int(data.get("required", 0))
    full = int(data.get("fully-allocated", required))
    base = full if fixed_size else required
    needed = base + base * margin_percent // 100 + reserve_bytes
    free = free_bytes(work_dir)
    result = SpacePlan(required, full, needed, free)
    if needed > free:
        raise InsufficientSpace(
            "not enough free space in the staging area to convert: the "
            "output needs %s (plus %d%% margin and %s reserve = %s) but only "
            "%s is free; free space in the staging directory or lower "
            "free_space_reserve_mb/free_space_margin_percent"
            % (human(base), margin_percent, human(reserve_bytes),
               human(needed), human(free)))
    return result
