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


"""``glance-ext-cache-manager`` behaves like an OpenStack daemon's CLI.

The shared options work before and after the sub-command (as in
``glance-ext``), ``--version`` and ``--log-file``/``--log-dir`` exist, a
missing instances path is a usage error (2) instead of a silent empty
pass, and a pass whose removal is blocked exits 3.
"""

import json
import os

import pytest

import glance_ext
from glance_ext.cmd import cache_manager as cli
from glance_ext.cmd import main as glance_ext_main


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert glance_ext.__version__ in capsys.readouterr().out
    with pytest.raises(SystemExit):
        glance_ext_main.main(["--version"])
    assert glance_ext.__version__ in capsys.readouterr().out


@pytest.mark.parametrize("where", ["before", "after"])
def test_options_before_or_after_the_sub_command(standard_tree, tmp_path,
                                                 capsys, where):
    conf = standard_tree.nova_conf()
    log = tmp_path / "cm.log"
    opts = ["--config-file", conf, "--log-file", str(log), "--debug"]
    argv = (opts + ["report", "--format", "json"] if where == "before"
            else ["report", "--format", "json"] + opts)
    assert cli.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["disks_scanned"] > 0
    # oslo.log wrote the debug log to the file, not to stdout.
    assert "DEBUG" in log.read_text()


def test_log_dir_names_the_file_after_the_program(standard_tree, tmp_path):
    conf = standard_tree.nova_conf()
    logs = tmp_path / "logs"
    logs.mkdir()
    assert cli.main(["report", "--config-file", conf, "--log-dir",
                     str(logs), "--debug"]) == 0
    assert os.listdir(str(logs)) == ["glance-ext-cache-manager.log"]


def test_missing_instances_path_is_a_usage_error(tmp_path, capsys):
    conf = tmp_path / "nova.conf"
    conf.write_text("[DEFAULT]\ninstances_path = %s\n"
                    % (tmp_path / "absent"))
    assert cli.main(["--config-file", str(conf), "run", "--once"]) == 2
    err = capsys.readouterr().err
    assert "instances path %s does not exist" % (tmp_path / "absent") in err
    assert "--config-file" in err


def test_missing_config_file_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["report", "--config-file", str(tmp_path / "x")]) == 2
    assert "config file %s not found" % (tmp_path / "x") in \
        capsys.readouterr().err


def test_blocked_removal_has_its_own_exit_status(standard_tree, capsys):
    # nova still removes bases itself: two removers would race, so the
    # manager only reports, and says so with exit status 3.
    conf = standard_tree.nova_conf(remove_unused_base_images="True")
    before = standard_tree.listing()
    assert cli.main(["--config-file", conf, "run", "--once"]) == \
        cli.EXIT_BLOCKED
    assert standard_tree.listing() == before
    capsys.readouterr()
    assert cli.main(["--config-file", conf, "report", "--format",
                     "json"]) == cli.EXIT_BLOCKED
    data = json.loads(capsys.readouterr().out)
    assert any("remove_unused_base_images" in r
               for r in data["blocked_reasons"]), data["blocked_reasons"]
