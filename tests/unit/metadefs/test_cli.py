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

"""``glance-ext metadefs ...`` exit codes and output."""

import json

from glance_ext.cmd import main


def test_check_ok(capsys):
    assert main.main(["metadefs", "check"]) == 0
    assert "0 errors, 0 warnings" in capsys.readouterr().out


def test_check_fails_with_precise_message(catalog_copy, capsys):
    directory, edit = catalog_copy
    edit("nova-cpu.json",
         lambda d: d["properties"]["cpu_cores"].pop("title"))
    assert main.main(["metadefs", "check", directory]) == 1
    out = capsys.readouterr().out
    assert "nova-cpu.json: properties/cpu_cores: no title" in out


def test_check_missing_directory(tmp_path, capsys):
    assert main.main(["metadefs", "check", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_coverage_text_and_json(capsys):
    assert main.main(["metadefs", "coverage"]) == 0
    out = capsys.readouterr().out
    assert "covered 86/86 fields" in out
    assert ("flavor extra specs: 525 validators (1 deprecated): 522 "
            "described, 3 excluded; 35 image/flavor twins; 18 aggregate "
            "keys") in out
    assert main.main(["metadefs", "coverage", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["covered"], data["total"], data["ok"]) == (86, 86, True)
    assert data["flavor"]["validators"] == 525
    assert data["flavor"]["described"] + data["flavor"]["excluded"] == 525


def test_coverage_fails_on_flavor_drift(catalog_copy, capsys):
    directory, edit = catalog_copy
    edit("nova-flavor-guest.json", lambda d: d["properties"][
        "os:secure_boot"]["enum"].append("optional"))
    assert main.main(["metadefs", "coverage", "--catalog", directory]) == 1
    out = capsys.readouterr().out
    assert "flavor   mismatch  os:secure_boot" in out
    assert "extra ['optional'] (values nova lacks)" in out
    assert "nova refuses flavor os:secure_boot='optional' that the " \
           "catalog allows" in out
    assert "twin     mismatch  os_secure_boot / os:secure_boot" in out


def test_coverage_below_100_exits_1(catalog_copy, capsys):
    directory, edit = catalog_copy
    edit("nova-image-hardware.json",
         lambda d: d["properties"].pop("hw_disk_bus"))
    assert main.main(["metadefs", "coverage", "--catalog", directory]) == 1
    out = capsys.readouterr().out
    assert "missing   hw_disk_bus" in out
    assert "covered 85/86" in out


def test_validate_properties(capsys):
    rc = main.main(["metadefs", "validate-properties", "hw_disk_bus=virtio",
                    "hw_cpu_policy=bogus", "os_distro=debian13", "k=v"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "ok      hw_disk_bus=virtio" in out
    assert "INVALID Invalid value 'bogus' for image property " \
           "'hw_cpu_policy'" in out
    assert "WARNING" in out and "advisory" in out
    assert "unknown k=v" in out
    assert main.main(["metadefs", "validate-properties",
                      "hw_disk_bus=sata"]) == 0


def test_validate_properties_usage_error(capsys):
    assert main.main(["metadefs", "validate-properties", "novalue"]) == 2
    assert "is not KEY=VALUE" in capsys.readouterr().err


def test_schema_image(tmp_path, capsys):
    out = tmp_path / "schema-image.json"
    assert main.main(["metadefs", "schema-image", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["hw_disk_bus"]["enum"][0] == "fdc"
    assert "enum" not in data["os_distro"]
    assert main.main(["metadefs", "schema-image", "-o", str(out),
                      "--enforce-all"]) == 0
    assert "enum" in json.loads(out.read_text())["os_distro"]
    assert main.main(["metadefs", "schema-image", "-o", str(out),
                      "--exclude-prefix", "trait:"]) == 0
    keys = json.loads(out.read_text())
    assert "hw_disk_bus" in keys
    assert not [k for k in keys if k.startswith("trait:")]
