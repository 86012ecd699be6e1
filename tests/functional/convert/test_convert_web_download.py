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

"""Functional: conversion of an image imported with web-download.

For web-download Glance's own download task reverts after the plugins
(see plugins/base.py), so this proves both paths through the real Glance:
a qcow2 fetched from a loopback server is converted and stored with the
same guest data; and a conversion refused (not enough staging space for
the reserve asked) leaves the image `queued` with our reason in the task
message and nothing in staging.
"""

import os

import pytest

from tests.functional.convert import helpers
from glance_ext.testing import images


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return images.ensure(str(tmp_path_factory.mktemp("wd")))["qcow2"]


def _serve(server, sample):
    name = "wd-%s" % os.path.basename(sample.path)
    target = os.path.join(server.directory, name)
    if not os.path.exists(target):
        os.link(sample.path, target)
    return server.url_for(name)


def test_web_download_is_converted(module_glance_factory, module_http_server,
                                   tmp_path_factory, sample, tmp_path):
    glance = module_glance_factory(
        plugins=helpers.OUR_PLUGINS,
        web_download_port=module_http_server.port,
        import_options=helpers.import_options(
            str(tmp_path_factory.mktemp("locks")), default_format="raw"))
    image = glance.wait_import(glance.web_download(
        _serve(module_http_server, sample), sample.claimed))
    assert image["status"] == "active", image
    assert image["disk_format"] == "raw"
    assert image["glance_ext_convert_source_disk_format"] == "qcow2"
    helpers.assert_stored_equals(glance, image, sample.path, "qcow2",
                                 str(tmp_path))
    assert glance.staged_file_gone(image["id"])


def test_refused_web_download_conversion_is_reverted(
        module_glance_factory, module_http_server, tmp_path_factory, sample):
    glance = module_glance_factory(
        plugins=helpers.OUR_PLUGINS,
        web_download_port=module_http_server.port,
        # The refusal under test is the file path's free-space check: a
        # streamed raw output writes nothing to staging and needs none.
        import_options=helpers.import_options(
            str(tmp_path_factory.mktemp("locks")), default_format="raw",
            free_space_reserve_mb=str(1024 * 1024 * 1024),
            stream_raw="false"))
    image = glance.wait_import(glance.web_download(
        _serve(module_http_server, sample), sample.claimed))
    assert image["status"] == "queued", image
    message = helpers.task_message(glance, image["id"])
    assert "not enough free space in the staging area" in message, message
    assert glance.staged_file_gone(image["id"])
