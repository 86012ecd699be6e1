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

"""The validate plugin inside a real glance-api (``glance-ext local-glance``).

What this proves, through the real glance CLI and API:
* good qcow2, raw, vmdk, vhdx and vhd images reach ``active`` carrying our
  ``glance_ext_validate_*`` properties (which only the plugin writes: proof
  that it ran);
* each malicious class of the corpus (with a polyglot only qemu's own
  format probe sees, and a parallels and a dmg image uploaded as raw) ends
  ``queued`` with the stores in
  ``os_glance_failed_import``, the reason in ``glance image-tasks``, and no
  staged file left; a fixed image then imports into the same image;
* web-download imports are validated too;
* the same malicious image goes ``active`` in a Glance *without* the plugin
  (so these tests would fail if the plugin did not run);
* a bad option value fails the import with a message naming the option.
"""

import shutil
import time

import pytest

from glance_ext.testing import corpus as generate

PLUGIN = "glance_ext_validate"
REJECTED = "Image rejected by glance_ext_validate: "

# (corpus case, text that must appear in the task message). One or more per
# class of anchors.md that the plugin must reject.
MALICIOUS = [
    ("qcow2_backing_abs", "qcow2 backing file is not allowed"),             # 1
    ("qcow2_data_file_json", "qcow2 external data file is not allowed"),    # 2
    ("qcow2_unknown_incompat", "unknown incompatible feature bits"),        # 3
    ("qcow2_version1", "qcow2 version 1 is not supported"),                 # 3
    ("qed_claimed_qcow2", "qed images are not allowed"),                    # 5
    ("vmdk_monolithicFlat", "descriptor-only VMDK"),                        # 6
    ("vmdk_slash_extent", "VMDK extent names a path"),                      # 7
    ("vmdk_bad_version", "vmdk header is malformed"),                       # 8
    ("vmdk_stream_eos_marker", "end-of-stream marker is invalid"),          # 9
    ("vmdk_text_monolithic_sparse", "descriptor-only VMDK"),                # 10
    ("vhdx_region_count", "vhdx header is malformed"),                      # 11
    ("iso_with_qcow2_header", "polyglot images are not allowed"),           # 13
    # What only qemu's own probe sees: a VMDK descriptor naming /etc/passwd
    # in the system area of a valid ISO.
    ("iso_with_vmdk_text_abs_extent",
     "qemu's format probe reads this iso image as vmdk, not iso"),          # 13
    ("parallels_as_raw", "parallels image uploaded as raw"),          # foreign
    ("dmg_as_raw", "dmg image uploaded as raw"),                      # foreign
    ("qcow2_claimed_raw", "import it with disk_format=qcow2"),              # 14
    ("gzip_claimed_qcow2", "gzip-compressed"),                              # 14
    ("nested_qcow2_backing_in_qcow2",
     "nested qcow2 inside qcow2: qcow2 backing file is not allowed"),       # 15
    ("luks_claimed_raw", "luks images are not allowed"),                    # 16
    ("qcow2_petabyte", "exceeds the limit"),                                # 17
    ("qcow2_backing_container_ovf", "qcow2 backing file is not allowed"),   # 19
    ("qcow2_backing_missing", "qcow2 backing file is not allowed"),         # 21
]

# Glance 33's own store-upload check (glance/location.py) still refuses a
# fixed VHD (unless [image_format] require_image_format_match = False, see
# test_fixed_vhd_with_glance_store_check_relaxed) and an extended_l2 qcow2
# (always: oslo's safety check), whatever an import plugin decides.
GOOD = ["good_qcow2", "good_raw", "good_vmdk", "good_vmdk_stream",
        "good_vhdx", "good_vhd", "good_vdi", "iso_hybrid_gpt", "gpt_pmbr",
        "qcow2_zstd"]


@pytest.fixture(scope="module")
def corpus():
    return {c.name: c for c in generate.ensure()}


@pytest.fixture(scope="module")
def glance(module_glance_factory, module_http_server):
    return module_glance_factory(plugins=[PLUGIN],
                                 web_download_port=module_http_server.port)


def _assert_rejected(glance, image_id, needle):
    image = glance.wait_import(image_id)
    assert image["status"] == "queued", image
    assert image.get("os_glance_failed_import") == "fs", image
    assert not image.get("os_glance_importing_to_stores"), image
    assert image["glance_ext_validate_verdict"] == "rejected"
    messages = [t["Message"] for t in glance.tasks(image_id)]
    assert any(m.startswith(REJECTED) and needle in m for m in messages), \
        messages
    assert glance.staged_file_gone(image_id)
    return image


@pytest.mark.parametrize("name", GOOD)
def test_good_image_becomes_active_with_our_properties(glance, corpus, name):
    case = corpus[name]
    image_id = glance.import_file(case.file, case.claimed)
    image = glance.wait_import(image_id)
    assert image["status"] == "active", (image, glance.api_tasks(image_id),
                                         glance.log_tail(200))
    assert image["glance_ext_validate_verdict"] == "accepted"
    expected = {"iso_hybrid_gpt": "iso", "gpt_pmbr": "gpt"}.get(
        name, case.claimed)
    assert image["glance_ext_validate_detected_format"] == expected
    assert int(image["glance_ext_validate_virtual_size"]) > 0
    assert image["glance_ext_validate_engine_version"].startswith("0.")
    assert image["disk_format"] == case.claimed
    assert glance.staged_file_gone(image_id)


@pytest.mark.parametrize("name,needle", MALICIOUS,
                         ids=[m[0] for m in MALICIOUS])
def test_malicious_image_ends_queued_with_reason(glance, corpus, name,
                                                 needle):
    case = corpus[name]
    image_id = glance.import_file(case.file, case.claimed,
                                  container_format=case.container)
    _assert_rejected(glance, image_id, needle)


def _wait_all_tasks_final(glance, image_id, count, timeout=180):
    """Wait until ``count`` import tasks exist and none is still running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = glance.api_tasks(image_id)
        if len(tasks) >= count and all(
                t["status"] in ("success", "failure") for t in tasks):
            return glance.image(image_id)
        time.sleep(0.3)
    raise AssertionError("tasks of %s not final: %s" % (image_id, tasks))


def test_fixed_image_imports_after_rejection(glance, corpus):
    image_id = glance.import_file(corpus["qcow2_backing_abs"].file, "qcow2")
    _assert_rejected(glance, image_id, "backing file")
    glance.stage_and_import(image_id, corpus["good_qcow2"].file)
    image = _wait_all_tasks_final(glance, image_id, 2)
    assert image["status"] == "active", glance.log_tail()
    assert image["glance_ext_validate_verdict"] == "accepted"
    assert "glance_ext_validate_reason" not in image


def test_web_download_is_validated(glance, corpus, module_http_server):
    for name in ("qcow2_backing_abs", "good_qcow2"):
        shutil.copyfile(corpus[name].file,
                        "%s/%s.img" % (module_http_server.directory, name))
    bad = glance.web_download(
        module_http_server.url_for("qcow2_backing_abs.img"), "qcow2")
    _assert_rejected(glance, bad, "qcow2 backing file is not allowed")
    good = glance.web_download(module_http_server.url_for("good_qcow2.img"),
                               "qcow2")
    image = glance.wait_import(good)
    assert image["status"] == "active", glance.log_tail()
    assert image["glance_ext_validate_verdict"] == "accepted"


def test_without_the_plugin_glance_accepts_the_same_images(
        local_glance_factory, corpus):
    # Glance inspects only container_format=bare uploads: a qcow2 with a
    # backing file passes as "ovf"; and its own checks see neither what
    # qemu's probe makes of the ISO nor the parallels image claimed raw.
    # The module's Glance (with the plugin) rejects these very files in
    # test_malicious_image_ends_queued_with_reason.
    bare = local_glance_factory()
    for name in ("qcow2_backing_container_ovf",
                 "iso_with_vmdk_text_abs_extent", "parallels_as_raw"):
        case = corpus[name]
        image_id = bare.import_file(case.file, case.claimed,
                                    container_format=case.container)
        image = bare.wait_import(image_id)
        assert image["status"] == "active", (name, image)
        assert "glance_ext_validate_verdict" not in image


@pytest.mark.parametrize("option,value", [
    ("format_mismatch_policy", "sometimes"),
    ("max_virtual_size_gb", "huge"),
])
def test_bad_option_fails_the_import_clearly(local_glance_factory, corpus,
                                             option, value):
    glance = local_glance_factory(
        plugins=[PLUGIN],
        import_options={"glance_ext_validate.%s" % option: value})
    image_id = glance.import_file(corpus["good_qcow2"].file, "qcow2")
    image = glance.wait_import(image_id)
    assert image["status"] == "queued"
    messages = " ".join(t["Message"] for t in glance.tasks(image_id))
    assert "glance_ext_validate is misconfigured" in messages
    assert option in messages


def test_correct_policy_sets_detected_disk_format(local_glance_factory,
                                                  corpus):
    glance = local_glance_factory(
        plugins=[PLUGIN],
        import_options={"glance_ext_validate.format_mismatch_policy":
                        "correct"})
    image_id = glance.import_file(corpus["good_vmdk"].file, "qcow2")
    image = glance.wait_import(image_id)
    assert image["status"] == "active", glance.log_tail()
    assert image["disk_format"] == "vmdk"
    assert image["glance_ext_validate_claimed_format"] == "qcow2"


def test_fixed_vhd_with_glance_store_check_relaxed(local_glance_factory,
                                                   corpus):
    glance = local_glance_factory(
        plugins=[PLUGIN],
        api_options={"image_format.require_image_format_match": "False"})
    image_id = glance.import_file(corpus["vhd_fixed"].file, "vhd")
    image = glance.wait_import(image_id)
    assert image["status"] == "active", glance.log_tail()
    assert image["glance_ext_validate_detected_format"] == "vhd"
    # And the plugin still stops what Glance's relaxed check would let by.
    bad = glance.import_file(corpus["vhd_fixed_claimed_raw"].file, "raw")
    _assert_rejected(glance, bad, "import it with disk_format=vhd")
