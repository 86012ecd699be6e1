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

"""Which properties an image create/update request sets."""

import json

import pytest

from glance_ext.middleware import image_requests as ir


@pytest.mark.parametrize("method,path,expected", [
    ("POST", "/v2/images", True),
    ("POST", "/v2.16/images/", True),
    ("PATCH", "/v2/images/8d1c-1", True),
    ("GET", "/v2/images", False),
    ("POST", "/v2/images/8d1c-1/import", False),
    ("PATCH", "/v2/images/8d1c-1/members/x", False),
    ("PUT", "/v2/images/8d1c-1/file", False),
    ("POST", "/v2/metadefs/namespaces", False),
])
def test_is_image_write(method, path, expected):
    assert ir.is_image_write(method, path) is expected


def test_create_body_keys():
    body = json.dumps({"name": "x", "hw_disk_bus": "virtio"}).encode()
    assert ir.properties_set("POST", body) == [
        ("name", "x"), ("hw_disk_bus", "virtio")]


def test_patch_v21_add_replace_only_top_level():
    body = json.dumps([
        {"op": "add", "path": "/hw_disk_bus", "value": "foo"},
        {"op": "replace", "path": "/trait:HW_CPU_X86_AVX2",
         "value": "required"},
        {"op": "remove", "path": "/hw_cpu_policy"},
        {"op": "add", "path": "/locations/-", "value": {"url": "x"}},
        {"op": "add", "path": "/a~1b~0c", "value": "1"},
    ]).encode()
    assert ir.properties_set("PATCH", body) == [
        ("hw_disk_bus", "foo"), ("trait:HW_CPU_X86_AVX2", "required"),
        ("a/b~c", "1")]


def test_patch_v20_form():
    body = json.dumps([{"replace": "/hw_vif_model", "value": "e1000"},
                       {"remove": "/x"}]).encode()
    assert ir.properties_set("PATCH", body) == [("hw_vif_model", "e1000")]


@pytest.mark.parametrize("method,body", [
    ("POST", b"not json"), ("POST", b"[1, 2]"), ("PATCH", b"{\"a\": 1}"),
    ("PATCH", b"\xff\xfe"), ("PATCH", b"[1, \"x\"]"),
])
def test_unreadable_bodies_are_left_to_glance(method, body):
    assert ir.properties_set(method, body) == []
