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

"""Target-format selection: rules, store map, conflicts, precedence."""

import pytest

from glance_ext.conversion import settings as settings_mod
from glance_ext.conversion import target


def make(**kw):
    return settings_mod.Settings(**kw)


def test_default_format_without_store_ids():
    d = target.choose(make(default_format="qcow2"), "vmdk", [None])
    assert d.target_format == "qcow2" and d.convert


def test_store_map_wins_over_default():
    s = make(store_formats=(("ceph", "raw"), ("fs", "qcow2")),
             default_format="vdi")
    assert target.choose(s, "vmdk", ["ceph"]).target_format == "raw"
    assert target.choose(s, "vmdk", ["fs"]).target_format == "qcow2"
    assert target.choose(s, "vmdk", ["other"]).target_format == "vdi"


def test_source_rule_keep_iso_by_default():
    d = target.choose(make(default_format="qcow2"), "iso", ["fs"])
    assert not d.convert and "kept" in d.reason


def test_source_rule_forces_format():
    s = make(source_format_rules=(("iso", "qcow2"), ("vdi", "raw")),
             store_formats=(("fs", "vmdk"),))
    assert target.choose(s, "iso", ["fs"]).target_format == "qcow2"
    assert target.choose(s, "vdi", ["fs"]).target_format == "raw"


def test_same_format_is_not_converted():
    assert not target.choose(make(default_format="qcow2"), "qcow2",
                             []).convert
    # a gpt-labelled disk is a raw disk: nothing to do for a raw store
    assert not target.choose(make(), "gpt", ["fs"]).convert
    assert target.choose(make(default_format="qcow2"), "gpt",
                         []).target_format == "qcow2"


def test_multi_store_conflict_is_a_clear_error():
    s = make(store_formats=(("ceph", "raw"), ("fs", "qcow2")))
    with pytest.raises(target.TargetError) as err:
        target.choose(s, "vmdk", ["ceph", "fs"])
    msg = str(err.value)
    assert "ceph: raw" in msg and "fs: qcow2" in msg
    assert "store_precedence" in msg


def test_multi_store_precedence():
    s = make(store_formats=(("ceph", "raw"), ("fs", "qcow2")),
             store_precedence=("nfs", "fs", "ceph"))
    d = target.choose(s, "vmdk", ["ceph", "fs"])
    assert d.target_format == "qcow2" and "fs" in d.reason


def test_multi_store_agreeing():
    s = make(store_formats=(("a", "qcow2"), ("b", "qcow2")))
    assert target.choose(s, "vdi", ["a", "b"]).target_format == "qcow2"


def test_bad_format_in_settings_is_rejected():
    with pytest.raises(settings_mod.SettingsError) as err:
        make(store_formats=(("ceph", "rbd"),))
    assert "ceph" in str(err.value) and "rbd" in str(err.value)
    with pytest.raises(settings_mod.SettingsError):
        make(source_format_rules=(("iso", "cdrom"),))


def test_output_options():
    s = make(vmdk_subformat="monolithicSparse", vhd_subformat="fixed")
    assert target.output_options(s, "vmdk") == ["subformat=monolithicSparse"]
    assert target.output_options(s, "vhd") == ["subformat=fixed"]
    assert target.output_options(s, "qcow2") == ["compat=1.1"]
    assert target.output_options(s, "raw") == []
