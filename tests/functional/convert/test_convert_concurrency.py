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

"""Four conversions at once on PostgreSQL, two Glance worker processes.

What this proves: with ``max_concurrent = 2`` no more than two
conversions (``qemu-img convert``, or ``nbdcopy`` streaming a raw output
into the store upload, the default for these single-store raw imports)
ever run on the host although four imports run in two worker
processes (the limit is shared through the slot lock files), at least two
do run together (the limit is not a global lock), the waiting imports say
so in their task message, and all four reach ``active`` with their data.
SQLite cannot run concurrent imports (notes/glance-33.md), hence
PostgreSQL. Conversions are throttled with ``rate_limit_mb`` so they
overlap.
"""

import threading
import time

from glance_ext.testing import qemu_procs
from tests.functional.convert import helpers
from glance_ext.testing import images


def test_four_conversions_respect_host_limit(local_glance_factory, tmp_path):
    glance = local_glance_factory(
        plugins=helpers.OUR_PLUGINS, db="postgresql", workers=2,
        import_options=helpers.import_options(
            str(tmp_path / "locks"), max_concurrent="2", rate_limit_mb="4"))
    paths = []
    for i in range(4):
        paths.append(images.pattern_image(str(tmp_path / ("c%d.qcow2" % i)),
                                          16, "qcow2"))
    ids = []
    lock = threading.Lock()

    def start(path):
        image_id = glance.import_file(path, "qcow2")
        with lock:
            ids.append(image_id)

    threads = [threading.Thread(target=start, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    marker = glance.staging_dir
    peak = 0
    waiting_seen = False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        peak = max(peak, len(qemu_procs.converter_pids(marker)))
        with lock:
            current = list(ids)
        for image_id in current:
            if "waiting for a conversion slot" in helpers.task_message(
                    glance, image_id):
                waiting_seen = True
        if len(current) == 4 and all(glance.image(i)["status"] in
                                     ("active", "queued") for i in current):
            break
        time.sleep(0.2)
    for t in threads:
        t.join()
    assert peak == 2, peak
    assert waiting_seen
    for image_id, path in zip(sorted(ids), sorted(paths)):
        image = glance.wait_import(image_id)
        assert image["status"] == "active", glance.log_tail()
        assert image["disk_format"] == "raw"
    assert glance.staged_files() == []
