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

"""``glance-ext convert``: the same engine offline, through main()."""

import json
import subprocess

from glance_ext.cmd import main


def run(capsys, *argv):
    rc = main.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_convert_to_format_json(samples, tmp_path, capsys):
    dst = str(tmp_path / "o.qcow2")
    rc, out, _ = run(capsys, "convert", samples["vhdx"].path, dst, "--to",
                     "qcow2", "--format", "json", "--compare", "--lock-dir",
                     str(tmp_path / "l"))
    assert rc == 0
    data = json.loads(out)
    assert data["converted"] and data["source_format"] == "vhdx"
    assert data["target_format"] == "qcow2" and data["compared"]
    assert subprocess.run(["qemu-img", "compare", "-f", "vhdx", "-F", "qcow2",
                           samples["vhdx"].path, dst]).returncode == 0


def test_for_store_uses_config(samples, tmp_path, capsys):
    conf = tmp_path / "glance-image-import.conf"
    conf.write_text("[glance_ext_convert]\nstore_formats = ceph:raw,fs:vdi\n"
                    "lock_dir = %s\n" % (tmp_path / "l"))
    dst = str(tmp_path / "o")
    rc, out, err = run(capsys, "convert", samples["qcow2"].path, dst,
                       "--for-store", "fs", "--config-file", str(conf),
                       "--progress", "always")
    assert rc == 0, err
    assert "qcow2 -> vdi" in out
    assert "converting 100.0%" in err
    rc, _, err = run(capsys, "convert", samples["qcow2"].path,
                     str(tmp_path / "o2"), "--for-store", "fs",
                     "--for-store", "ceph", "--config-file", str(conf))
    assert rc == 1 and "different disk formats" in err


def test_nothing_to_do(samples, tmp_path, capsys):
    dst = tmp_path / "o"
    rc, out, _ = run(capsys, "convert", samples["iso_hybrid_gpt"].path,
                     str(dst), "--for-store", "fs")
    assert rc == 0 and "nothing to do" in out and not dst.exists()


def test_refused_source_and_usage(tmp_path, capsys):
    bad = tmp_path / "b.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b",
                    "/etc/passwd", "-F", "raw", str(bad)], check=True)
    rc, _, err = run(capsys, "convert", str(bad), str(tmp_path / "o"),
                     "--to", "raw")
    assert rc == 1 and "backing" in err
    rc, _, err = run(capsys, "convert", str(tmp_path / "missing"),
                     str(tmp_path / "o"), "--to", "raw")
    assert rc == 2 and "not a readable file" in err
    bad.write_bytes(b"x")
    rc, _, err = run(capsys, "convert", str(bad), str(bad), "--to", "raw")
    assert rc == 2 and "exists" in err


def test_bad_config_is_usage_error(samples, tmp_path, capsys):
    conf = tmp_path / "c.conf"
    conf.write_text("[glance_ext_convert]\ndefault_format = ext4\n")
    rc, _, err = run(capsys, "convert", samples["raw"].path,
                     str(tmp_path / "o"), "--config-file", str(conf))
    assert rc == 2 and "default_format" in err
