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

"""The boundary's wording: each plugin's refusals and configuration
errors read in ``glance image-tasks`` as they did before the errors got
one hierarchy, whatever kind the engine raised."""

import lzma

from glance.common import exception as glance_exception
from oslo_config import cfg
import pytest
from taskflow.patterns import linear_flow as lf
import taskflow.engines

from glance_ext import exceptions
from glance_ext.decompression import options as decompress_options
from glance_ext.plugins import base
from glance_ext.plugins import convert
from glance_ext.plugins import decompress
from glance_ext.plugins import inject
from glance_ext.plugins import validate
from glance_ext.testing.plugin_doubles import (FakeActionWrapper, FakeImage,
                                               StagedData)


def _bare(cls):
    # translate() reads only the class's message attributes, so no Glance
    # flow is needed to build the text.
    return cls.__new__(cls)


@pytest.mark.parametrize("cls,exc,text", [
    (validate.ValidateImage, exceptions.SourceRejected("has a backing file"),
     "Image rejected by glance_ext_validate: has a backing file"),
    (convert.ConvertImage, exceptions.SourceRejected("has a backing file"),
     "Image rejected by glance_ext_convert's inspection: has a backing "
     "file"),
    (inject.InjectProperties, exceptions.RuleError("rule 3 is empty"),
     "glance_ext_inject configuration error: rule 3 is empty (fix "
     "glance-image-import.conf or the rules file)"),
    (validate.ValidateImage, exceptions.PolicyError("bad allowed_formats"),
     "glance_ext_validate is misconfigured: bad allowed_formats (fix "
     "glance-image-import.conf)"),
], ids=["validate-refused", "convert-refused", "inject-config",
        "validate-config"])
def test_plugin_wording(cls, exc, text):
    assert str(base.translate(_bare(cls), exc)) == text


def test_decompress_refusal_names_the_codec(tmp_path, monkeypatch):
    """A truncated xz upload, run through the plugin as Glance runs it:
    the refusal names the plugin and the codec it refused."""
    conf = cfg.ConfigOpts()
    decompress_options.register_opts(conf)
    conf(args=[], default_config_files=[], default_config_dirs=[])
    monkeypatch.setattr(decompress, "CONF", conf)
    image = FakeImage("qcow2")
    image.status = "importing"
    blob = lzma.compress(b"\0" * (1 << 20))
    staged = tmp_path / image.image_id
    staged.write_bytes(blob[:len(blob) // 2])
    image.size = staged.stat().st_size     # a complete upload of bad data
    flow = lf.Flow("import").add(StagedData(str(staged)))
    flow.add(decompress.get_flow(
        task_id="t1", task_type="api_image_import",
        action_wrapper=FakeActionWrapper(image), backend=["fs"],
        import_req={"method": {"name": "glance-direct"}}, task_repo=None))
    with pytest.raises(glance_exception.UploadException) as err:
        taskflow.engines.run(flow)
    assert str(err.value).startswith(
        "glance_ext_decompress refused the xz data: "), str(err.value)
