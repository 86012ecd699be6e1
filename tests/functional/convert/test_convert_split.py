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

"""Split conversion inside a real glance-api.

What this proves: with ``split_workers = 2``, a streamOptimized VMDK (to
qcow2, through one qemu-nbd) and a compressed qcow2 (to raw, at file
offsets) imported with glance-direct are converted by two qemu-img
processes from inside the Glance worker, reach ``active`` with the data
Glance serves equal to the source (``qemu-img compare``), and leave
nothing in staging and no process behind.
"""

import pytest

from tests.functional.convert import helpers
from glance_ext.testing import images
from glance_ext.testing import qemu_procs


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return images.split_sources(str(tmp_path_factory.mktemp("split")))


@pytest.fixture(scope="module")
def glance(module_glance_factory, tmp_path_factory):
    return module_glance_factory(
        plugins=helpers.OUR_PLUGINS,
        # Splitting is the file path's (a raw output written at file
        # offsets); a streamed raw output is one ordered stream.
        import_options=helpers.import_options(
            str(tmp_path_factory.mktemp("locks")), default_format="raw",
            stream_raw="false",
            store_formats="fs:qcow2", source_format_rules="qcow2:raw",
            split_workers="2",
            split_min_data_mb="16"))


@pytest.mark.parametrize("name,claimed,driver,target", [
    ("vmdk_stream", "vmdk", "vmdk", "qcow2"),          # through qemu-nbd
    ("qcow2_compressed", "qcow2", "qcow2", "raw")])    # at file offsets
def test_compressed_source_converted_by_two_processes(
        glance, sources, tmp_path, name, claimed, driver, target):
    image_id = glance.import_file(sources[name], claimed)
    image = glance.wait_import(image_id)
    assert image["status"] == "active", (image, glance.log_tail())
    assert image["disk_format"] == target
    assert image["virtual_size"] == 64 * 1024 * 1024
    with open(glance.log_path, errors="replace") as fh:
        done = [line for line in fh
                if "Image %s converted %s to %s" % (image_id, driver, target)
                in line]
    assert done and "(cache unsafe, 2 processes)" in done[-1], done
    helpers.assert_stored_equals(glance, image, sources[name], driver,
                                 str(tmp_path))
    assert not helpers.ours_in_staging(glance, image_id)
    assert not qemu_procs.pids_naming(image_id)
