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

"""The decompress plugin inside a real glance-api, before validate/convert.

What this proves, through the real glance CLI and API:
* a qcow2 image compressed with gzip, bzip2, xz, zstd or in a single-member
  zip, imported as disk_format qcow2, is decompressed, validated and
  converted: ``active`` as raw with the source's data, and the codec is
  recorded in ``glance_ext_decompress_codec`` (only the plugin writes it);
* a decompression bomb is refused early (the message names the ratio) and
  a truncated xz, a zip with two members and a zip member with a path are
  refused with specific messages; each ends ``queued`` with nothing left
  in staging, and staging a good archive into the same image then works.
"""

import os

import pytest

from tests.functional.convert import helpers
from glance_ext.testing import images
from glance_ext.testing import archives

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def glance(module_glance_factory, tmp_path_factory):
    opts = helpers.import_options(str(tmp_path_factory.mktemp("locks")))
    opts.update({"glance_ext_decompress.max_ratio": "50",
                 "glance_ext_decompress.ratio_grace_mb": "8"})
    return module_glance_factory(plugins=helpers.OUR_PLUGINS,
                                 import_options=opts)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    d = tmp_path_factory.mktemp("decompress")
    return images.ensure(str(d / "samples"))["qcow2"].path


def compressed(source, codec, out_dir):
    with open(source, "rb") as fh:
        data = fh.read()
    path = os.path.join(out_dir, "image." + codec)
    if codec == "zip":
        return archives.make_zip(path, [("disk.qcow2", data)])
    return archives.write(path, archives.compress(codec, data))


@pytest.mark.parametrize("codec", ["gzip", "bzip2", "xz", "zstd", "zip"])
def test_each_codec(glance, source, tmp_path, codec):
    path = compressed(source, codec, str(tmp_path))
    image = glance.wait_import(glance.import_file(path, "qcow2"))
    assert image["status"] == "active", glance.log_tail()
    assert image["glance_ext_decompress_codec"] == codec
    assert image["glance_ext_validate_detected_format"] == "qcow2"
    assert image["disk_format"] == "raw"
    assert image["virtual_size"] == images.VIRTUAL_SIZE
    helpers.assert_stored_equals(glance, image, source, "qcow2",
                                 str(tmp_path))
    assert not helpers.ours_in_staging(glance, image["id"])


def _bomb(tmp, source):
    return archives.zero_bomb("gzip", os.path.join(tmp, "bomb.gz"),
                              256 * MiB)


def _truncated_xz(tmp, source):
    blob = archives.compress("xz", open(source, "rb").read())
    return archives.write(os.path.join(tmp, "t.xz"), blob[:len(blob) // 2])


def _two_members(tmp, source):
    return archives.make_zip(os.path.join(tmp, "two.zip"),
                             [("a.qcow2", b"1" * 4096),
                              ("b.qcow2", b"2" * 4096)])


def _path_member(tmp, source):
    return archives.make_zip(os.path.join(tmp, "p.zip"),
                             [("../../etc/disk.qcow2", b"1" * 4096)])


@pytest.mark.parametrize("make,text", [
    (_bomb, "likely decompression bomb"),
    (_truncated_xz, "corrupt or truncated"),
    (_two_members, "has 2 members"),
    (_path_member, "path separator"),
])
def test_refused_then_retry(glance, source, tmp_path, make, text):
    path = make(str(tmp_path), source)
    image_id = glance.import_file(path, "qcow2")
    image = glance.wait_import(image_id)
    helpers.assert_reverted(glance, image, text)
    assert "glance_ext_decompress refused" in helpers.task_message(
        glance, image_id)
    image = helpers.import_again(glance, image_id, compressed(
        source, "gzip", str(tmp_path)))
    assert image["status"] == "active", glance.log_tail()
