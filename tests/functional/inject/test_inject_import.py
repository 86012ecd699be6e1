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

"""The inject plugin inside a real glance-api (``glance-ext local-glance``).

What this proves, through the real glance CLI and API, with
``[glance_ext_inject] check_policy = enforce`` after ``glance_ext_validate``:
* a clean Ubuntu qcow2 ends ``active`` with the discovered properties, the
  Image Guide check results, the properties of a rule conditional on the
  caller's project and role (templated), and the user's own value kept —
  properties only the plugin writes, so the plugin really ran;
* a rule on the caller's role and the image's visibility matches for an
  admin import only;
* a Windows image without virtio drivers ends ``active`` with a disk bus
  and NIC model it can boot with;
* a never-generalised Debian image is rejected: ``queued``, stores in
  ``os_glance_failed_import``, the failed checks in ``glance image-tasks``,
  no staged file left;
* an invalid rule fails the import with a configuration error naming the
  rule, the property and the allowed values.
"""

import time

import pytest

from glance_ext import testing
from glance_ext.local_glance import client
from glance_ext.testing.guest import disks
from glance_ext.testing import windows_disks

PLUGINS = ["glance_ext_validate", "glance_ext_inject"]
RULES = """\
- when: {os_type: linux, project: demo, roles: [member]}
  set:
    os_admin_user: "{os.distro}"
    hw_video_model: virtio
- when: {os_type: linux, roles: [admin], visibility: [shared, private]}
  set: {hw_rng_model: virtio}
"""


@pytest.fixture(scope="module", autouse=True)
def need_builders():
    missing = disks.tool_missing()
    if missing:
        testing.needs("guest image builders need %s" % missing)


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rules") / "inject-rules.yaml"
    path.write_text(RULES)
    return path


@pytest.fixture(scope="module")
def glance(module_glance_factory, rules_file):
    return module_glance_factory(plugins=PLUGINS, import_options={
        "glance_ext_inject.check_policy": "enforce",
        "glance_ext_inject.rules_file": str(rules_file)})


def _messages(glance, image_id):
    return [t["Message"] for t in glance.tasks(image_id)]


def test_linux_image_active_with_discovered_properties(glance):
    path = disks.image(disks.SPECS["ubuntu-gpt"], "qcow2")
    image_id = glance.import_file(path, "qcow2", name="ubuntu",
                                  os_distro="ubuntu")
    image = glance.wait_import(image_id)
    assert image["status"] == "active", (image, glance.log_tail(100))
    assert image["glance_ext_validate_verdict"] == "accepted"
    expected = {"os_type": "linux", "os_version": "22.04",
                "hw_architecture": "x86_64", "hw_qemu_guest_agent": "true",
                # the user's value, kept over the discovered ubuntu22.04
                "os_distro": "ubuntu",
                # rule 1: project demo, role member; templated
                "os_admin_user": "ubuntu", "hw_video_model": "virtio",
                "glance_ext_inject_check_cloud_init": "pass",
                "glance_ext_inject_check_ssh_host_keys": "pass",
                "glance_ext_inject_check_root_last": "pass",
                "glance_ext_inject_checks_failed": "none"}
    assert {k: image.get(k) for k in expected} == expected
    assert "hw_rng_model" not in image          # rule 2 needs admin
    assert image["glance_ext_inject_properties"] == (
        "hw_architecture,hw_qemu_guest_agent,hw_video_model,"
        "os_admin_user,os_type,os_version")
    assert glance.staged_file_gone(image_id)


def test_role_and_visibility_conditions_from_the_real_request(glance):
    # The admin token's roles come from Glance's own RequestContext; the
    # visibility from its image repository (a new image is "shared").
    path = disks.image(disks.SPECS["debian-mbr"], "qcow2")
    with open(path, "rb") as data:
        proc = glance.glance(
            "image-create-via-import", "--disk-format", "qcow2",
            "--container-format", "bare", "--name", "as-admin",
            "--import-method", "glance-direct", stdin=data,
            token=glance.admin_token)
    image_id = client.parse_table(proc.stdout)["id"]
    # Only the admin project sees the image: poll with the admin token.
    deadline = time.monotonic() + 120
    while True:
        image = glance.api("/v2/images/%s" % image_id,
                           token=glance.admin_token)
        if image["status"] == "active" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert image["status"] == "active", (image, glance.log_tail(100))
    assert image["visibility"] == "shared"
    assert image["hw_rng_model"] == "virtio"      # rule 2: admin, shared
    assert "os_admin_user" not in image          # rule 1: project demo only
    assert image["os_distro"] == "debian12"


def test_windows_without_virtio_gets_bootable_devices(glance):
    why = windows_disks.missing()
    if why:
        testing.needs("Windows test disks need %s" % why)
    path = windows_disks.image("win2k22-novirtio", "qcow2")
    image_id = glance.import_file(path, "qcow2", name="win2k22")
    image = glance.wait_import(image_id)
    assert image["status"] == "active", (image, glance.log_tail(100))
    expected = {"os_type": "windows", "os_distro": "win2k22",
                "hw_firmware_type": "uefi", "hw_machine_type": "q35",
                "hw_disk_bus": "sata", "hw_vif_model": "e1000",
                "glance_ext_inject_check_cloud_init": "pass"}
    assert {k: image.get(k) for k in expected} == expected
    assert "os_admin_user" not in image         # rule 1 is for linux


def test_enforce_rejects_image_failing_checks_with_reasons(glance):
    path = disks.image(disks.SPECS["debian-dirty-mbr"])
    image_id = glance.import_file(path, "raw", name="dirty")
    image = glance.wait_import(image_id)
    assert image["status"] == "queued", image
    assert image.get("os_glance_failed_import") == "fs"
    assert not image.get("os_glance_importing_to_stores")
    messages = _messages(glance, image_id)
    rejected = [m for m in messages if m.startswith(
        "Image rejected by glance_ext_inject: failed Image Guide checks: ")]
    assert rejected, messages
    for reason in ("cloud-init (error)", "ssh-host-keys (error)",
                   "persistent-net (error)"):
        assert reason in rejected[0]
    assert image["glance_ext_inject_check_ssh_host_keys"] == "fail"
    assert "os_type" not in image               # revert removed the rest
    assert glance.staged_file_gone(image_id)
    # A clean image staged into the same image then imports.
    glance.stage_and_import(image_id, disks.image(disks.SPECS["debian-mbr"]))
    deadline = time.monotonic() + 120
    while glance.image(image_id)["status"] != "active":
        assert time.monotonic() < deadline, glance.log_tail(60)
        time.sleep(0.3)
    image = glance.image(image_id)
    assert image["os_distro"] == "debian12"
    assert "glance_ext_inject_reason" not in image


def test_invalid_rule_is_a_configuration_error(glance, rules_file):
    rules_file.write_text("- set: {hw_disk_bus: floppy}\n")
    try:
        path = disks.image(disks.SPECS["debian-mbr"], "qcow2")
        image_id = glance.import_file(path, "qcow2", name="badrule")
        image = glance.wait_import(image_id)
    finally:
        rules_file.write_text(RULES)
    assert image["status"] == "queued"
    messages = " ".join(_messages(glance, image_id))
    assert ("glance_ext_inject configuration error: rule 1 sets "
            "hw_disk_bus=floppy: it is not allowed; allowed: one of fdc, "
            "ide, sata, scsi") in messages, messages
