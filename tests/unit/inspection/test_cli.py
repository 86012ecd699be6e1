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

"""``glance-ext inspect`` exit statuses and output, run as a real process."""

import json
import subprocess
import sys


def _run(*args):
    return subprocess.run([sys.executable, "-m", "glance_ext.cmd.main",
                           "inspect"] + list(args), capture_output=True,
                          text=True)


def test_accepted_exit_0(corpus):
    res = _run(corpus["good_qcow2"].file, "--claimed-format", "qcow2")
    assert res.returncode == 0, res.stderr
    assert "verdict:         accepted" in res.stdout


def test_rejected_exit_1_with_reason(corpus):
    res = _run(corpus["qcow2_backing_abs"].file)
    assert res.returncode == 1
    assert "qcow2 backing file is not allowed" in res.stdout
    assert res.stderr == ""


def test_json_output(corpus):
    res = _run(corpus["qcow2_claimed_raw"].file, "--format", "json",
               "--claimed-format", "raw")
    assert res.returncode == 1
    data = json.loads(res.stdout)
    assert data["verdict"] == "rejected"
    assert data["detected_format"] == "qcow2"
    assert data["rejections"][0]["code"] == "format_mismatch"


def test_usage_errors_exit_2(corpus, tmp_path):
    assert _run("/nonexistent/file").returncode == 2
    assert _run(corpus["good_raw"].file, "--format", "xml").returncode == 2
    assert _run(corpus["good_raw"].file, "--claimed-format",
                "floppy").returncode == 2
    bad = tmp_path / "bad.conf"
    bad.write_text("[glance_ext_validate]\nformat_mismatch_policy = maybe\n")
    res = _run(corpus["good_raw"].file, "--config-file", str(bad))
    assert res.returncode == 2
    assert "format_mismatch_policy" in res.stderr


def test_config_file_policy_applies(corpus, tmp_path):
    conf = tmp_path / "import.conf"
    conf.write_text("[glance_ext_validate]\nformat_mismatch_policy = "
                    "correct\n")
    res = _run(corpus["qcow2_claimed_raw"].file, "--claimed-format", "raw",
               "--config-file", str(conf))
    assert res.returncode == 0
    assert "store as:        qcow2" in res.stdout


def test_output_identical_for_existing_and_missing_backing_path(corpus):
    a = _run(corpus["qcow2_backing_abs"].file, "--format", "json")
    b = _run(corpus["qcow2_backing_missing"].file, "--format", "json")
    assert a.returncode == b.returncode == 1
    da, db = json.loads(a.stdout), json.loads(b.stdout)
    assert da["rejections"] == db["rejections"]
