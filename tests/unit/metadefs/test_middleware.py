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

"""The paste filter's own logic: what it inspects, caches and answers.

Glance itself is replaced here by a small WSGI app serving the metadefs
API's response shapes from the catalog files, so cache timing and failure
modes can be driven precisely; tests/functional/metadefs runs the filter
inside a real glance-api.
"""

import json
import urllib.parse

import webob
from oslo_config import cfg

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import rules as rules_mod
from glance_ext.middleware import catalog_source
from glance_ext.middleware import enforcement
from glance_ext.middleware import filter_factory

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


class MetadefsStandIn:
    """Downstream app: metadefs API from files, 201/200 for image writes."""

    def __init__(self, catalog, extra=(), filter_resource_types=True):
        self.catalog = catalog
        self.extra = list(extra)
        self.filter_resource_types = filter_resource_types
        self.fail = False
        self.metadefs_calls = 0
        self.image_writes = 0
        self.seen_context = []

    def __call__(self, environ, start_response):
        req = webob.Request(environ)
        if req.path_info.startswith("/v2/metadefs/"):
            self.metadefs_calls += 1
            self.seen_context.append(
                environ.get("webob.adhoc_attrs", {}).get("context"))
            if self.fail:
                return webob.Response(status=500, text="db down")(
                    environ, start_response)
            docs = self.catalog.documents + self.extra
            if req.path_info == "/v2/metadefs/namespaces":
                # Glance's paging: limit, marker, and a next link that
                # keeps the query (glance/api/v2/metadef_namespaces.py);
                # resource_types keeps only namespaces associated with one
                # of the listed types, as Glance's listing does.
                wanted = req.params.get("resource_types")
                if wanted is not None and self.filter_resource_types:
                    types = set(wanted.split(","))
                    docs = [d for d in docs if types & {
                        a["name"] for a in
                        d.get("resource_type_associations") or ()}]
                names = [d["namespace"] for d in docs]
                start = (names.index(req.params["marker"]) + 1
                         if "marker" in req.params else 0)
                limit = int(req.params.get("limit", 1000))
                page = names[start:start + limit]
                body = {"namespaces": [{"namespace": n} for n in page]}
                if start + limit < len(names):
                    params = dict(req.params, marker=page[-1])
                    body["next"] = "/v2/metadefs/namespaces?" + \
                        urllib.parse.urlencode(params)
            else:
                name = req.path_info.rsplit("/", 1)[1]
                body = next(d for d in docs if d["namespace"] == name)
            return webob.Response(json_body=body)(environ, start_response)
        self.image_writes += 1
        return webob.Response(status=201, json_body={"ok": True})(
            environ, start_response)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _image_namespaces(catalog):
    return [d["namespace"] for d in catalog.documents
            if catalog_mod.IMAGE in {a["name"] for a in
                                     d["resource_type_associations"]}]


def _app(shipped_catalog, **local_conf):
    downstream = MetadefsStandIn(shipped_catalog)
    conf = cfg.ConfigOpts()
    settings = enforcement.Settings(conf, local_conf)
    app = enforcement.MetadefsEnforcement(downstream, settings)
    clock = Clock()
    app.cache._clock = clock
    return app, downstream, clock


def _post(app, body, context="ctx"):
    req = webob.Request.blank("/v2/images", method="POST",
                              body=json.dumps(body).encode(),
                              content_type="application/json")
    req.environ["webob.adhoc_attrs"] = {"context": context}
    return req.get_response(app)


def _patch(app, ops):
    req = webob.Request.blank("/v2/images/abc", method="PATCH",
                              body=json.dumps(ops).encode(),
                              content_type=PATCH_TYPE)
    return req.get_response(app)


def test_refuses_invalid_create_naming_property_value_and_allowed(
        shipped_catalog):
    app, downstream, _ = _app(shipped_catalog)
    resp = _post(app, {"name": "x", "hw_disk_bus": "foo"})
    assert resp.status_int == 400
    assert resp.content_type == "text/html"
    assert "'hw_disk_bus'" in resp.text and "'foo'" in resp.text
    assert "virtio" in resp.text
    assert downstream.image_writes == 0


def test_refuses_invalid_patch_and_accepts_valid(shipped_catalog):
    app, downstream, _ = _app(shipped_catalog)
    resp = _patch(app, [{"op": "add", "path": "/hw_cpu_policy",
                         "value": "bogus"}])
    assert resp.status_int == 400
    assert "dedicated, shared, mixed" in resp.text
    resp = _patch(app, [{"op": "add", "path": "/hw_cpu_policy",
                         "value": "mixed"},
                        {"op": "add", "path": "/custom_key", "value": "x"},
                        {"op": "remove", "path": "/hw_disk_bus"}])
    assert resp.status_int == 201
    assert downstream.image_writes == 1


def test_all_violations_in_one_answer(shipped_catalog):
    app, _, _ = _app(shipped_catalog)
    resp = _post(app, {"hw_disk_bus": "foo", "hw_cpu_cores": "many"})
    assert "'hw_disk_bus'" in resp.text and "'hw_cpu_cores'" in resp.text


def test_advisory_os_distro_is_accepted(shipped_catalog):
    app, downstream, _ = _app(shipped_catalog)
    assert _post(app, {"os_distro": "debian13"}).status_int == 201
    app, downstream, _ = _app(shipped_catalog, advisory_properties="")
    assert _post(app, {"os_distro": "debian13"}).status_int == 400


def test_other_requests_pass_without_reading_the_catalog(shipped_catalog):
    app, downstream, _ = _app(shipped_catalog)
    resp = webob.Request.blank("/v2/images").get_response(app)
    assert resp.status_int == 201  # the stand-in's answer, untouched
    assert downstream.metadefs_calls == 0


def test_catalog_cached_then_refreshed_with_the_request_context(
        shipped_catalog):
    app, downstream, clock = _app(shipped_catalog, refresh_interval="30")
    _post(app, {"hw_disk_bus": "virtio"}, context="ctx-1")
    calls = downstream.metadefs_calls
    # one listing, then one GET per image namespace (not the flavor ones)
    assert calls == 1 + len(_image_namespaces(shipped_catalog))
    assert set(downstream.seen_context) == {"ctx-1"}
    clock.now += 29
    _post(app, {"hw_disk_bus": "virtio"})
    assert downstream.metadefs_calls == calls
    # an operator loads a new namespace: it applies after the interval
    downstream.extra.append({
        "namespace": "GlanceExt::Site::Extra",
        "resource_type_associations": [{"name": "OS::Glance::Image"}],
        "properties": {"site_tier": {"title": "Tier", "type": "string",
                                     "enum": ["gold", "silver"]}}})
    assert _post(app, {"site_tier": "bronze"}).status_int == 201
    clock.now += 2
    assert _post(app, {"site_tier": "bronze"}).status_int == 400


def test_only_configured_namespaces_are_enforced(shipped_catalog):
    app, downstream, _ = _app(shipped_catalog)
    downstream.extra.append({
        "namespace": "OS::Compute::CPUPinning",   # Glance's stale one
        "resource_type_associations": [{"name": "OS::Glance::Image",
                                        "prefix": "hw_"}],
        "properties": {"cpu_policy": {"title": "p", "type": "string",
                                      "enum": ["shared", "dedicated"]}}})
    assert _post(app, {"hw_cpu_policy": "mixed"}).status_int == 201


def test_fail_open_then_keep_last_good_catalog(shipped_catalog):
    app, downstream, clock = _app(shipped_catalog)
    downstream.fail = True
    assert _post(app, {"hw_disk_bus": "foo"}).status_int == 201  # open
    assert "500" in app.cache.last_error
    downstream.fail = False
    clock.now += 11  # retry_interval 10
    assert _post(app, {"hw_disk_bus": "foo"}).status_int == 400
    downstream.fail = True
    clock.now += 61
    assert _post(app, {"hw_disk_bus": "foo"}).status_int == 400  # last good


def test_fail_closed(shipped_catalog):
    app, downstream, _ = _app(shipped_catalog, fail_closed="true")
    downstream.fail = True
    resp = _post(app, {"hw_disk_bus": "virtio"})
    assert resp.status_int == 503
    assert "could not be read" in resp.text


def test_empty_catalog_enforces_nothing(shipped_catalog):
    app, downstream, _ = _app(catalog_mod.Catalog([], []))
    assert _post(app, {"hw_disk_bus": "foo"}).status_int == 201


def test_paste_factory_and_option_errors(shipped_catalog):
    wrapped = filter_factory({}, refresh_interval="5")(
        MetadefsStandIn(shipped_catalog))
    assert wrapped.settings.refresh_interval == 5
    try:
        enforcement.Settings(cfg.ConfigOpts(), {"refresh_interval": "soon"})
    except ValueError as e:
        assert "refresh_interval='soon'" in str(e)
    else:
        raise AssertionError("invalid paste option accepted")


def test_follows_glance_paging(shipped_catalog, monkeypatch):
    monkeypatch.setattr(catalog_source, "PAGE_SIZE", 3)
    downstream = MetadefsStandIn(shipped_catalog)
    catalog = catalog_source.fetch_catalog(
        downstream, {}, "OS::Glance::Image", ["GlanceExt::*"])
    image_namespaces = _image_namespaces(shipped_catalog)
    assert catalog.namespaces() == image_namespaces
    # 3 pages of names, then one GET per namespace
    assert len(image_namespaces) == 8
    assert downstream.metadefs_calls == 3 + len(image_namespaces)


FLAVOR_ONLY = {
    # A flavor-only namespace that matches the enforced GlanceExt::*
    # pattern and even defines an image-looking key with other values.
    "namespace": "GlanceExt::Site::FlavorOnly",
    "resource_type_associations": [{"name": catalog_mod.FLAVOR}],
    "properties": {
        "hw_disk_bus": {"title": "t", "type": "string", "enum": ["nvme"]},
        "hw:cpu_policy": {"title": "t", "type": "string",
                          "enum": ["shared"]},
    },
}


def _without_image_association(catalog):
    docs = [(d, s) for d, s in zip(catalog.documents, catalog.sources)
            if catalog_mod.IMAGE in {a["name"] for a in
                                     d["resource_type_associations"]}]
    return catalog_mod.Catalog([d for d, _ in docs], [s for _, s in docs])


def _rule_table(ruleset):
    return {key: (r.kind, r.enum, r.minimum, r.maximum, r.pattern_text,
                  r.namespace) for key, r in ruleset.exact.items()}


def test_flavor_namespaces_do_not_change_image_rules(shipped_catalog):
    """The shipped flavor/aggregate namespaces add no image rule."""
    image_only = _without_image_association(shipped_catalog)
    assert len(image_only.documents) < len(shipped_catalog.documents)
    full = _rule_table(rules_mod.compile_rules(shipped_catalog))
    assert full == _rule_table(rules_mod.compile_rules(image_only))
    assert not [k for k in full if k.startswith(("hw:", "quota:",
                                                 "capabilities:"))]


def test_flavor_only_namespace_does_not_change_image_enforcement(
        shipped_catalog):
    # Even if the listing returned every namespace (no resource_types
    # filtering), the filter enforces only what is associated with images.
    for filtered in (True, False):
        downstream = MetadefsStandIn(shipped_catalog, extra=[FLAVOR_ONLY],
                                     filter_resource_types=filtered)
        settings = enforcement.Settings(cfg.ConfigOpts(), {})
        app = enforcement.MetadefsEnforcement(downstream, settings)
        assert _post(app, {"hw_disk_bus": "virtio",
                           "hw_cpu_policy": "mixed",
                           "hw:cpu_policy": "dedicated"}).status_int == 201
        resp = _post(app, {"hw_disk_bus": "nvme"})
        assert resp.status_int == 400
        assert "one of fdc, ide, sata, scsi, usb, virtio" in resp.text
        rules = app.cache.rules
        assert rules.exact["hw_disk_bus"].namespace == \
            "GlanceExt::Nova::ImageHardware"
        assert "hw:cpu_policy" not in rules.exact
        fetched = "GlanceExt::Site::FlavorOnly" in app.cache.namespaces
        assert fetched is not filtered


def test_error_body_follows_the_accept_header_as_glance_does(
        shipped_catalog):
    # A client that asks for JSON gets Glance's JSON error body; the glance
    # CLI and openstacksdk send no Accept header and get Glance's HTML page,
    # whose text both show. Quotes stay quotes (webob's template would
    # escape them and the glance CLI would show &#x27;).
    app, _, _ = _app(shipped_catalog)
    for accept, expected in ((None, "text/html"), ("*/*", "text/html"),
                             ("application/json", "application/json"),
                             ("text/html;q=0.9, application/json",
                              "application/json")):
        req = webob.Request.blank("/v2/images", method="POST",
                                  body=json.dumps(
                                      {"hw_disk_bus": "<foo>"}).encode(),
                                  content_type="application/json")
        if accept:
            req.headers["Accept"] = accept
        req.environ["webob.adhoc_attrs"] = {"context": "ctx"}
        resp = req.get_response(app)
        assert resp.status_int == 400
        assert resp.content_type == expected, accept
        if expected == "application/json":
            body = resp.json
            assert body["code"] == "400 Bad Request"
            assert body["title"] == "Bad Request"
            assert "'hw_disk_bus'" in body["message"]
        else:
            assert "<h1>400 Bad Request</h1>" in resp.text
            assert "'hw_disk_bus'" in resp.text
            assert "'&lt;foo&gt;'" in resp.text
