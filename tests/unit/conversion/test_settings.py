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

"""Options are read and validated up front; limits scale with size."""

import pytest
from oslo_config import cfg

from glance_ext.conversion import options
from glance_ext.conversion import process
from glance_ext.conversion import settings as settings_mod

GiB = 1024 ** 3


def conf_with(tmp_path, text):
    path = tmp_path / "import.conf"
    path.write_text("[glance_ext_convert]\n" + text)
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf(args=[], default_config_files=[str(path)], default_config_dirs=[])
    return conf


def test_from_conf_reads_maps(tmp_path):
    s = settings_mod.Settings.from_conf(conf_with(
        tmp_path, "store_formats = ceph:raw, fs:qcow2\n"
                  "source_format_rules = iso:keep,vdi:qcow2\n"
                  "store_precedence = fs,ceph\nfree_space_reserve_mb = 1\n"))
    assert s.store_format_map == {"ceph": "raw", "fs": "qcow2"}
    assert s.source_rule_map == {"iso": "keep", "vdi": "qcow2"}
    assert s.store_precedence == ("fs", "ceph")
    assert s.free_space_reserve == 1024 * 1024


def test_from_conf_names_bad_option(tmp_path):
    with pytest.raises(settings_mod.SettingsError) as err:
        settings_mod.Settings.from_conf(conf_with(tmp_path,
                                                  "default_format = ext4\n"))
    assert "glance_ext_convert" in str(err.value)
    with pytest.raises(settings_mod.SettingsError) as err:
        settings_mod.Settings.from_conf(conf_with(tmp_path,
                                                  "store_formats = a:b\n"))
    assert "'a'" in str(err.value)


def test_cpu_policy_is_an_enum(tmp_path):
    assert settings_mod.Settings.from_conf(conf_with(
        tmp_path, "")).cpu_policy is process.CpuPolicy.NORMAL
    s = settings_mod.Settings.from_conf(conf_with(tmp_path,
                                                  "cpu_policy = idle\n"))
    assert s.cpu_policy is process.CpuPolicy.IDLE
    with pytest.raises(settings_mod.SettingsError) as err:
        settings_mod.Settings.from_conf(conf_with(tmp_path,
                                                  "cpu_policy = fifo\n"))
    assert "cpu_policy" in str(err.value)


def test_tuning_carries_every_process_setting(tmp_path):
    # Both conversion paths build their process.Tuning here: a setting
    # read from the file must reach it, and the cache mode is the one the
    # caller resolved ("auto" is never passed to qemu-img).
    s = settings_mod.Settings.from_conf(conf_with(
        tmp_path, "nice = 3\ncpu_policy = idle\nionice_class = idle\n"
        "coroutines = 4\nout_of_order_writes = false\n"
        "sparse_size_kb = 64\nrate_limit_mb = 50\n"))
    t = s.tuning("none")
    assert (t.nice, t.cpu_policy, t.ionice_class) == (
        3, process.CpuPolicy.IDLE, "idle")
    assert (t.coroutines, t.out_of_order, t.sparse_size_kb,
            t.rate_limit_mb, t.cache_mode) == (4, False, 64, 50, "none")
    assert t.cpu == process.CpuPriority(3, process.CpuPolicy.IDLE)
    assert s.tuning().cache_mode == "unsafe"


def test_timeout_scales_with_size():
    s = settings_mod.Settings(timeout_base_seconds=100,
                              timeout_seconds_per_gb=30)
    assert s.timeout_for(0) == 100
    assert s.timeout_for(10 * GiB) == 400


def test_slot_dir_default_is_next_to_staging():
    s = settings_mod.Settings()
    assert s.slot_dir("/var/lib/glance/staging") == \
        "/var/lib/glance/glance-ext-convert-slots"
    assert settings_mod.Settings(lock_dir="/run/x").slot_dir("/s") == "/run/x"
