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

"""Policy options: validation of operator values and their effect."""

import pytest
from oslo_config import cfg

from glance_ext.inspection import options
from glance_ext.inspection import policy


def _conf(tmp_path, text):
    path = tmp_path / "glance-image-import.conf"
    path.write_text("[glance_ext_validate]\n" + text)
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf(args=[], default_config_files=[str(path)], default_config_dirs=[])
    return conf


def test_defaults(tmp_path):
    p = policy.Policy.from_conf(_conf(tmp_path, ""))
    assert p.mismatch == "reject"
    assert "qcow2" in p.allowed_formats and "luks" not in p.allowed_formats


@pytest.mark.parametrize("text,needle", [
    ("format_mismatch_policy = fix\n", "format_mismatch_policy"),
    ("max_virtual_size_gb = lots\n", "max_virtual_size_gb"),
    ("allowed_disk_formats = raw,floppy\n", "floppy"),
    ("vmdk_allowed_types = monolithicFlat\n", "monolithicFlat"),
    ("mbr_fatal_checks = nonsense\n", "nonsense"),
    ("nested_image_policy = maybe\n", "nested_image_policy"),
])
def test_bad_values_give_a_clear_error(tmp_path, text, needle):
    with pytest.raises(policy.PolicyError) as err:
        policy.Policy.from_conf(_conf(tmp_path, text))
    assert needle in str(err.value)
    assert "glance_ext_validate" in str(err.value)


def test_list_opts_names_the_group():
    (group, opts), = options.list_opts()
    assert group == "glance_ext_validate"
    assert {o.name for o in opts} >= {"format_mismatch_policy",
                                      "allowed_disk_formats",
                                      "max_virtual_size_gb",
                                      "max_virtual_ratio",
                                      "vmdk_allowed_types",
                                      "require_signature"}


def test_claim_compatibility():
    assert policy.claim_matches("gpt", "raw")
    assert policy.claim_matches("gpt", "gpt")
    assert not policy.claim_matches("iso", "raw")
    assert not policy.claim_matches("qcow2", "raw")
    assert policy.claim_matches("raw", None)
