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

"""The inject task inside a real taskflow engine, on real guest images.

Glance's image repository and import lock need a running Glance (covered by
tests/functional/inject); here the ActionWrapper hands out Glance's real
``_ImportActions`` over an in-memory image and the request context is a
plain object (keystone cannot run here). The guest engine, its worker
process, qemu-nbd and the metadefs catalog are the real ones.
"""

import json
import os
import shutil
import types

import pytest
import taskflow.engines
from oslo_config import cfg
from taskflow import task
from taskflow.patterns import linear_flow as lf

from glance.common import exception as glance_exception

from glance_ext import testing
from glance_ext.guest import inspect_guest
from glance_ext.guest import options as guest_options
from glance_ext.guest import sbom
from glance_ext.injection import options
from glance_ext.plugins import inject
from glance_ext.testing.guest import disks
from glance_ext.testing.plugin_doubles import IMAGE_ID, FakeActionWrapper, FakeImage
from glance_ext.testing import windows_disks


class FakeRepo:
    def __init__(self, image):
        self.image = image

    def get(self, image_id):
        assert image_id == self.image.image_id
        return self.image


class Failing(task.Task):
    def execute(self, file_path):
        raise RuntimeError("a later plugin failed")


@pytest.fixture(autouse=True)
def need_builders():
    missing = disks.tool_missing()
    if missing:
        testing.needs("guest image builders need %s" % missing)


@pytest.fixture
def conf(monkeypatch, tmp_path):
    def make(text=""):
        path = tmp_path / "glance-image-import.conf"
        path.write_text("[glance_ext_inject]\n" + text)
        c = cfg.ConfigOpts()
        options.register_opts(c)
        guest_options.register_opts(c)
        c(args=[], default_config_files=[str(path)], default_config_dirs=[])
        monkeypatch.setattr(inject, "CONF", c)
        return c
    make()
    return make


def _stage(src, tmp_path):
    staged = tmp_path / "staging" / IMAGE_ID
    staged.parent.mkdir(exist_ok=True)
    shutil.copyfile(src, staged)
    return str(staged)


def _run(staged, image, later=None, roles=("member",)):
    context = types.SimpleNamespace(project_id="p1", roles=list(roles),
                                    user_id="u1")
    if image.size is None:
        image.size = os.path.getsize(staged)   # as glance image-stage does
    flow = lf.Flow("import").add(inject.get_flow(
        task_id="t1", task_type="api_image_import",
        action_wrapper=FakeActionWrapper(image), backend=["fs"],
        context=context, image_repo=FakeRepo(image),
        import_req={"method": {"name": "glance-direct"}}))
    if later is not None:
        flow.add(later)
    taskflow.engines.run(flow, store={"file_path": "file://" + staged})


def test_ubuntu_gets_discovered_properties_and_check_results(conf,
                                                             tmp_path):
    staged = _stage(disks.image(disks.SPECS["ubuntu-gpt"], "qcow2"),
                    tmp_path)
    image = FakeImage("qcow2", os_distro="ubuntu")   # the user set it
    _run(staged, image)
    props = image.extra_properties
    assert props["os_type"] == "linux"
    assert props["os_distro"] == "ubuntu"            # kept: user's value
    assert props["os_version"] == "22.04"
    assert props["hw_architecture"] == "x86_64"
    assert "hw_firmware_type" not in props           # firmware "both"
    assert props["hw_qemu_guest_agent"] == "true"
    assert props["glance_ext_inject_check_cloud_init"] == "pass"
    assert props["glance_ext_inject_checks_failed"] == "none"
    assert props["glance_ext_inject_properties"] == (
        "hw_architecture,hw_qemu_guest_agent,os_type,os_version")
    assert image.status == "importing"


def test_rules_templating_and_override(conf, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- when: {os_type: linux, disk_format: raw, project: p1,\n"
        "         visibility: shared, roles: [member]}\n"
        "  set: {os_admin_user: '{os.distro}', hw_machine_type: pc}\n"
        "- when: {os_type: windows}\n"
        "  set: {hw_disk_bus: ide}\n"
        "- set: {os_distro: '{os.osinfo_id}'}\n"
        "  override_user: true\n")
    conf("rules_file = %s\nstatic_properties = hw_rng_model:virtio\n"
         % rules)
    staged = _stage(disks.image(disks.SPECS["debian-mbr"]), tmp_path)
    image = FakeImage("raw", os_distro="debian", hw_rng_model="builtin")
    _run(staged, image)
    props = image.extra_properties
    assert props["os_admin_user"] == "debian"
    assert props["hw_machine_type"] == "pc"
    assert props["hw_firmware_type"] == "bios"
    assert props["os_distro"] == "debian12"          # rule overrode user
    assert props["hw_rng_model"] == "builtin"        # user kept
    assert "hw_disk_bus" not in props


def test_role_condition_not_met(conf, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text('[{"when": {"roles": ["admin"]}, '
                     '"set": {"hw_video_model": "virtio"}}]')
    conf("rules_file = %s\n" % rules)
    staged = _stage(disks.image(disks.SPECS["debian-mbr"]), tmp_path)
    image = FakeImage("raw")
    _run(staged, image, roles=("member",))
    assert "hw_video_model" not in image.extra_properties


def test_enforce_rejects_with_failed_checks_and_reverts(conf, tmp_path):
    conf("check_policy = enforce\n")
    staged = _stage(disks.image(disks.SPECS["debian-dirty-mbr"]), tmp_path)
    image = FakeImage("raw")
    with pytest.raises(glance_exception.UploadException) as exc:
        _run(staged, image)
    text = str(exc.value)
    assert text.startswith("Image rejected by glance_ext_inject: failed "
                           "Image Guide checks: ")
    for check in ("cloud-init (error)", "ssh-host-keys (error)",
                  "persistent-net (error)"):
        assert check in text
    assert "growpart" not in text                    # a warning: not enforced
    props = image.extra_properties
    assert image.status == "queued"
    assert props["os_glance_failed_import"] == "fs"
    assert "os_type" not in props                    # nothing else kept
    assert props["glance_ext_inject_check_ssh_host_keys"] == "fail"
    assert props["glance_ext_inject_reason"].startswith("failed Image")
    assert not (tmp_path / "staging" / IMAGE_ID).exists()


def test_warn_policy_imports_and_records_warning(conf, tmp_path):
    conf("check_policy = warn\nenforced_severities = error,warning\n")
    staged = _stage(disks.image(disks.SPECS["debian-dirty-mbr"]), tmp_path)
    image = FakeImage("raw")
    _run(staged, image)
    warning = image.extra_properties["glance_ext_inject_warning"]
    assert "growpart (warning)" in warning and "cloud-init" in warning
    assert image.status == "importing"


def test_revert_removes_what_it_set_and_restores_user_values(conf,
                                                             tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("- set: {hw_disk_bus: scsi}\n  override_user: true\n")
    conf("rules_file = %s\n" % rules)
    staged = _stage(disks.image(disks.SPECS["debian-mbr"]), tmp_path)
    image = FakeImage("raw", hw_disk_bus="virtio", note="mine")
    with pytest.raises(RuntimeError):
        _run(staged, image, later=Failing(name="later"))
    props = image.extra_properties
    assert props["hw_disk_bus"] == "virtio"
    assert props["note"] == "mine"
    assert not any(k.startswith(("glance_ext_inject_", "os_type",
                                 "hw_architecture")) for k in props), props
    assert image.status == "queued"


@pytest.mark.parametrize("rules_text,needle", [
    ("- set: {hw_disk_bus: foo}\n",
     "glance_ext_inject configuration error: rule 1 sets hw_disk_bus=foo: "
     "it is not allowed; allowed: one of fdc, ide, sata"),
    ("- set: {hw_disk_bus: '{os.distro}'}\n",
     "rule 1 sets hw_disk_bus=debian: it is not allowed"),
])
def test_invalid_rule_fails_the_import_clearly(conf, tmp_path, rules_text,
                                               needle):
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text)
    conf("rules_file = %s\n" % rules)
    staged = _stage(disks.image(disks.SPECS["debian-mbr"]), tmp_path)
    image = FakeImage("raw")
    with pytest.raises(glance_exception.UploadException) as exc:
        _run(staged, image)
    assert needle in str(exc.value)
    assert image.status == "queued"


def test_bad_option_is_named(conf, tmp_path):
    conf("discover = os_type,os_colour\n")
    staged = _stage(disks.image(disks.SPECS["debian-mbr"]), tmp_path)
    with pytest.raises(glance_exception.UploadException,
                       match="discover: unknown os_colour"):
        _run(staged, FakeImage("raw"))


@pytest.mark.parametrize("option,needle", [
    ("catalog_dir = /nonexistent", "cannot read the metadefs catalog in "
     "/nonexistent"),
    ("windows_fallback_disk_bus = floppy", "option windows_fallback_disk_bus"
     " sets hw_disk_bus=floppy: it is not allowed"),
    ("enforced_severities = fatal", "enforced_severities: unknown fatal"),
    ("static_properties = hw_video_model:vga2",
     "static_properties sets hw_video_model=vga2"),
])
def test_bad_configuration_is_named(conf, tmp_path, option, needle):
    conf(option + "\n")
    staged = _stage(disks.image(disks.SPECS["debian-mbr"]), tmp_path)
    with pytest.raises(glance_exception.UploadException) as exc:
        _run(staged, FakeImage("raw"))
    assert str(exc.value).startswith("glance_ext_inject configuration "
                                     "error: ")
    assert needle in str(exc.value)


def test_uninspectable_image(conf, tmp_path):
    junk = tmp_path / "junk.raw"
    junk.write_bytes(b"\0" * 1024 * 1024)
    staged = _stage(str(junk), tmp_path)
    image = FakeImage("raw")
    _run(staged, image)
    props = image.extra_properties
    assert props["glance_ext_inject_inspection_error"]
    assert props["glance_ext_inject_properties"] == "none"
    conf("require_inspection = true\n")
    staged = _stage(str(junk), tmp_path)
    with pytest.raises(glance_exception.UploadException,
                       match="could not be inspected"):
        _run(staged, FakeImage("raw"))


@pytest.fixture
def windows_ok():
    why = windows_disks.missing()
    if why:
        testing.needs("Windows test disks need %s" % why)


@pytest.mark.parametrize("variant,container,expected", [
    ("win2k22-novirtio", "qcow2", {"hw_disk_bus": "sata",
                                   "hw_vif_model": "e1000"}),
    ("win2k22-virtio", "raw", {}),
    ("win2k22-vioscsi-staged-net", "raw", {"hw_disk_bus": "scsi",
                                           "hw_scsi_model": "virtio-scsi"}),
])
def test_windows_devices(windows_ok, conf, tmp_path, variant, container,
                         expected):
    staged = _stage(windows_disks.image(variant, container), tmp_path)
    image = FakeImage(disks.disk_format_of(container))
    _run(staged, image)
    props = image.extra_properties
    assert props["os_type"] == "windows"
    assert props["os_distro"] == "win2k22"
    assert props["hw_firmware_type"] == "uefi"
    assert props["hw_machine_type"] == "q35"
    got = {k: props[k] for k in ("hw_disk_bus", "hw_vif_model",
                                 "hw_scsi_model") if k in props}
    assert got == expected


def test_drivers_without_drivers_dir_cannot_tell(windows_ok):
    # The stock fixture has no System32/drivers: nothing can be told.
    report = inspect_guest(disks.image(disks.SPECS["win2k22-gpt"]), "raw")
    result = report["windows_drivers"]
    assert result["storage"] is None and "does not exist" in result["error"]
    report = inspect_guest(disks.image(disks.SPECS["debian-mbr"]), "raw")
    assert "windows_drivers" not in report.to_dict()


# -- the package inventory, the SBOM and the os_eol policy --

def _need_rpm():
    from glance_ext.testing.guest import pkgdb
    why = pkgdb.rpm_missing()
    testing.needs(why)


def _need_osinfo():
    if not os.path.isdir("/usr/share/osinfo/os"):
        testing.needs("osinfo-db is not installed")


def test_package_summary_and_sbom_written(conf, tmp_path):
    _need_rpm()
    sboms = tmp_path / "sboms"
    sboms.mkdir()
    conf("sbom_dir = %s\n" % sboms)
    staged = _stage(disks.image(disks.SPECS["rhel-lvm"], "qcow2"), tmp_path)
    image = FakeImage("qcow2")
    _run(staged, image)
    props = image.extra_properties
    assert props["glance_ext_inject_packages"] == "6"
    assert props["glance_ext_inject_kernel"] == \
        "5.14.0-162.6.1.el9_1.x86_64"
    written = sboms / (IMAGE_ID + ".cdx.json")
    text = written.read_text()
    assert sbom.validate(text) is None
    assert props["glance_ext_inject_sbom_sha256"] == sbom.sha256(text)
    doc = json.loads(text)
    image_prop = [p for p in doc["metadata"]["component"]["properties"]
                  if p["name"] == "glance_ext:image_id"]
    assert image_prop == [{"name": "glance_ext:image_id",
                           "value": IMAGE_ID}]
    assert oct(written.stat().st_mode & 0o777) == "0o640"
    assert props["glance_ext_inject_os_eol"] == "unknown"   # rhel9.1
    assert props["glance_ext_inject_check_os_eol"] == "unknown"
    assert image.status == "importing"


def test_sbom_removed_when_a_later_plugin_fails(conf, tmp_path):
    sboms = tmp_path / "sboms"
    sboms.mkdir()
    conf("sbom_dir = %s\n" % sboms)
    staged = _stage(disks.image(disks.SPECS["debian-mbr"]), tmp_path)
    with pytest.raises(RuntimeError):
        _run(staged, FakeImage("raw"), later=Failing(name="later"))
    assert list(sboms.iterdir()) == []


def test_unwritable_sbom_dir_is_a_configuration_error(conf, tmp_path):
    conf("sbom_dir = %s\n" % (tmp_path / "missing"))
    staged = _stage(disks.image(disks.SPECS["debian-mbr"]), tmp_path)
    image = FakeImage("raw")
    with pytest.raises(glance_exception.UploadException) as exc:
        _run(staged, image)
    assert "glance_ext_inject cannot write the SBOM to [glance_ext_inject] " \
        "sbom_dir %s: No such file or directory" % (tmp_path / "missing") \
        in str(exc.value)
    assert image.status == "queued"


def test_no_packages_no_summary(conf, tmp_path):
    conf("discover = os_type\n")
    staged = _stage(disks.image(disks.SPECS["debian-mbr"]), tmp_path)
    image = FakeImage("raw")
    _run(staged, image)
    assert "glance_ext_inject_packages" not in image.extra_properties
    assert "glance_ext_inject_sbom_sha256" not in image.extra_properties


def test_eol_enforce_rejects_with_the_date(conf, tmp_path):
    _need_rpm()
    _need_osinfo()
    conf("os_eol_policy = enforce\n")
    staged = _stage(disks.image(disks.SPECS["centos7-bdb"]), tmp_path)
    image = FakeImage("raw")
    with pytest.raises(glance_exception.UploadException) as exc:
        _run(staged, image)
    assert str(exc.value).startswith(
        "Image rejected by glance_ext_inject: os_eol: centos7 reached its "
        "end of life on 2024-06-30")
    props = image.extra_properties
    assert image.status == "queued"
    assert props["glance_ext_inject_os_eol"] == "2024-06-30"
    assert props["glance_ext_inject_check_os_eol"] == "fail"
    assert "2024-06-30" in props["glance_ext_inject_reason"]


def test_eol_warn_and_record(conf, tmp_path):
    _need_rpm()
    _need_osinfo()
    conf("os_eol_policy = warn\n")
    staged = _stage(disks.image(disks.SPECS["centos7-bdb"]), tmp_path)
    image = FakeImage("raw")
    _run(staged, image)
    assert image.extra_properties["glance_ext_inject_warning"].startswith(
        "os_eol: centos7 reached its end of life on 2024-06-30")
    conf("")
    staged = _stage(disks.image(disks.SPECS["centos7-bdb"]), tmp_path)
    image = FakeImage("raw")
    _run(staged, image)
    assert "glance_ext_inject_warning" not in image.extra_properties
    assert image.extra_properties["glance_ext_inject_check_os_eol"] == "fail"


def test_eol_margin_warns_before_the_date(conf, tmp_path):
    # win2k22 ends on 2031-10-14: a margin reaching past it warns.
    _need_osinfo()
    conf("os_eol_policy = enforce\nos_eol_warn_days = 100000\n")
    staged = _stage(disks.image(disks.SPECS["win2k22-gpt"]), tmp_path)
    image = FakeImage("raw")
    _run(staged, image)
    props = image.extra_properties
    assert image.status == "importing"
    assert props["glance_ext_inject_os_eol"] == "2031-10-14"
    assert props["glance_ext_inject_check_os_eol"] == "pass"
    assert "win2k22 reaches its end of life on 2031-10-14, in" in \
        props["glance_ext_inject_warning"]


def test_eol_without_osinfo_db_is_a_configuration_error(conf, tmp_path):
    conf("os_eol_policy = enforce\n[glance_ext_guest]\nosinfo_db_dir = "
         "%s\n" % (tmp_path / "none"))
    staged = _stage(disks.image(disks.SPECS["debian-mbr"]), tmp_path)
    image = FakeImage("raw")
    with pytest.raises(glance_exception.UploadException) as exc:
        _run(staged, image)
    text = str(exc.value)
    assert text.startswith("glance_ext_inject configuration error: "
                           "os_eol_policy = enforce needs osinfo-db: ")
    assert "install osinfo-db" in text
    assert "rejected" not in text
