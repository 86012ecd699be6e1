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

"""The format matrix through a real glance-api (``glance-ext local-glance``).

What this proves, through the real glance CLI and API:
* every input the validate plugin accepts (qcow2 incl. extended_l2 and
  zstd, vmdk monolithicSparse and streamOptimized, vhd dynamic and fixed,
  vhdx, vdi, raw, gpt-labelled raw, hybrid ISO+GPT) imported with
  glance-direct reaches ``active`` converted to raw (Glance "raw", the
  default format) and to qcow2 (Glance "map", via ``store_formats =
  fs:qcow2``), with the right disk_format, size and virtual_size, and the
  data Glance serves back equal to the source (``qemu-img compare``);
* the hybrid ISO is kept as iso by the default rule, and converted by a
  ``source_format_rules`` entry in the other Glance;
* extended_l2 qcow2 and fixed VHD, which Glance's own store check refuses
  as they are, are re-written and stored;
* the ``glance_ext_convert_*`` properties (only the plugin writes them)
  record the original disk_format and size; nothing stays in staging.
"""

import os

import pytest

from tests.functional.convert import helpers
from glance_ext.testing import images

VIRTUAL = images.VIRTUAL_SIZE


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return images.ensure(str(tmp_path_factory.mktemp("matrix-images")))


@pytest.fixture(scope="module")
def glances(module_glance_factory, tmp_path_factory):
    locks = str(tmp_path_factory.mktemp("locks"))
    raw = module_glance_factory(
        plugins=helpers.OUR_PLUGINS,
        import_options=helpers.import_options(
            locks, default_format="raw", record_source_sha512="true"))
    qcow2 = module_glance_factory(
        plugins=helpers.OUR_PLUGINS,
        import_options=helpers.import_options(
            locks, default_format="raw", store_formats="fs:qcow2",
            source_format_rules="iso:qcow2"))
    return {"raw": raw, "qcow2": qcow2}


def expected_disk_format(sample, target):
    if sample.name == "iso_hybrid_gpt":
        return "iso" if target == "raw" else "qcow2"
    return target


@pytest.mark.parametrize("target", ["raw", "qcow2"])
@pytest.mark.parametrize("name", images.NAMES)
def test_input_converted_and_stored(glances, samples, tmp_path, name,
                                    target):
    glance = glances[target]
    sample = samples[name]
    image_id = glance.import_file(sample.path, sample.claimed)
    image = glance.wait_import(image_id)
    assert image["status"] == "active", (image, glance.log_tail())
    assert image["disk_format"] == expected_disk_format(sample, target)
    assert image["container_format"] == "bare"
    assert image["virtual_size"] == VIRTUAL
    assert image["glance_ext_validate_verdict"] == "accepted"
    source_format = image["glance_ext_validate_detected_format"]
    converted = source_format != image["disk_format"] and not (
        source_format == "gpt" and image["disk_format"] == "raw")
    rewritten = name in ("qcow2_extended_l2",) and target == "qcow2"
    if converted or rewritten:
        assert image["glance_ext_convert_source_disk_format"] == \
            sample.claimed
        assert image["glance_ext_convert_source_size"] == \
            str(os.path.getsize(sample.path))
        assert image["glance_ext_convert_target_format"] == \
            image["disk_format"]
        if target == "raw":
            assert len(image["glance_ext_convert_source_sha512"]) == 128
    else:
        assert "glance_ext_convert_target_format" not in image
    helpers.assert_stored_equals(glance, image, sample.path,
                                 sample.qemu_format, str(tmp_path))
    assert not helpers.ours_in_staging(glance, image_id)


def test_fixed_vhd_kept_as_vhd_is_rewritten(module_glance_factory, samples,
                                            tmp_path_factory):
    """A vhd store: the fixed VHD needs no format change, but Glance's own
    store check would refuse it, so it is re-written as a dynamic VHD."""
    glance = module_glance_factory(
        plugins=helpers.OUR_PLUGINS,
        import_options=helpers.import_options(
            str(tmp_path_factory.mktemp("locks")), default_format="vhd"))
    sample = samples["vhd_fixed"]
    image = glance.wait_import(glance.import_file(sample.path, "vhd"))
    assert image["status"] == "active", glance.log_tail()
    assert image["disk_format"] == "vhd"
    assert "re-written as vhd" in image["glance_ext_convert_reason"]
    helpers.assert_stored_equals(glance, image, sample.path, "vpc",
                                 str(tmp_path_factory.mktemp("dl")))
