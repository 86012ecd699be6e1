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

"""Per-request overhead of the metadefs enforcement filter (target: p99 < 0.5 ms).

Side by side in one process:
- ``filter``: glance_ext.middleware wrapped around a downstream app that
  answers at once, minus the same downstream called directly (so the
  figure is the filter's own cost: body read, JSON parse, rule lookups);
- ``peer``: Glance's own enforcement of schema-image.json, i.e.
  ``glance.api.v2.images.get_schema(custom_properties).validate(body)``
  with the schema-image.json this catalog generates (with and without the
  trait: keys), on the same body; and, for reference, Glance's validation
  without any schema-image.json (which Glance does on every create anyway).

Run: .venv/bin/python bench/middleware_bench.py [--iterations 5000]
     [--peer-iterations 20]
"""

import argparse
import json
import statistics
import time
import warnings

import webob
from oslo_config import cfg

from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import schema_image
from glance_ext.middleware import enforcement

CREATE_BODY = {
    "name": "bench", "disk_format": "qcow2", "container_format": "bare",
    "hw_disk_bus": "virtio", "hw_scsi_model": "virtio-scsi",
    "hw_vif_model": "virtio", "hw_cpu_policy": "dedicated",
    "hw_cpu_thread_policy": "prefer", "hw_qemu_guest_agent": "yes",
    "hw_cpu_cores": "2", "hw_numa_nodes": "2", "hw_numa_cpus.0": "0-1",
    "hw_numa_mem.0": "1024", "os_distro": "ubuntu22.04",
    "trait:HW_CPU_X86_AVX2": "required", "site_owner": "team-a",
}
PATCH_BODY = [{"op": "replace", "path": "/" + k, "value": v}
              for k, v in list(CREATE_BODY.items())[3:8]]
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


class Downstream:
    """Serves the metadefs API shapes once, then answers image writes."""

    def __init__(self, catalog):
        self.catalog = catalog

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        if path.startswith("/v2/metadefs/namespaces"):
            if path == "/v2/metadefs/namespaces":
                body = {"namespaces": [{"namespace": n}
                                       for n in self.catalog.namespaces()]}
            else:
                body = self.catalog.document(path.rsplit("/", 1)[1])
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        data = b"{}"
        start_response("201 Created", [("Content-Type", "application/json"),
                                       ("Content-Length", str(len(data)))])
        return [data]


def _environ(method, path, body, content_type):
    return webob.Request.blank(path, method=method, body=body,
                               content_type=content_type).environ


def _call(app, environ):
    out = []
    for chunk in app(environ, lambda status, headers, exc=None: None):
        out.append(chunk)
    return out


def measure_filter(app, bare, method, path, body, content_type, n):
    overheads = []
    for _ in range(n):
        e1 = _environ(method, path, body, content_type)
        e2 = _environ(method, path, body, content_type)
        t0 = time.perf_counter_ns()
        _call(app, e1)
        t1 = time.perf_counter_ns()
        _call(bare, e2)
        t2 = time.perf_counter_ns()
        overheads.append((t1 - t0) - (t2 - t1))
    return overheads


def measure_peer(schema, body, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        schema.validate(body)
        times.append(time.perf_counter_ns() - t0)
    return times


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] / 1000.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--peer-iterations", type=int, default=20,
                        help="Glance's schema validation takes tens of ms "
                             "per call; fewer samples keep the run short")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from glance.api.v2 import images as glance_images

    catalog = catalog_mod.load_directory(catalog_mod.default_directory())
    bare = Downstream(catalog)
    settings = enforcement.Settings(cfg.ConfigOpts(), {})
    app = enforcement.MetadefsEnforcement(bare, settings)
    create = json.dumps(CREATE_BODY).encode()
    patch = json.dumps(PATCH_BODY).encode()
    _call(app, _environ("POST", "/v2/images", create, "application/json"))
    assert app.cache.rules is not None and len(app.cache.rules) > 400

    full = schema_image.build(catalog)
    glance_schema = glance_images.get_schema(
        {"properties": full, "required": None})
    no_traits = {k: v for k, v in schema_image.build(catalog).items()
                 if not k.startswith("trait:")}
    glance_schema_no_traits = glance_images.get_schema(
        {"properties": no_traits, "required": None})
    glance_base = glance_images.get_schema(None)

    n = args.iterations
    rows = [
        ("filter POST /v2/images (%d props)" % len(CREATE_BODY),
         measure_filter(app, bare, "POST", "/v2/images", create,
                        "application/json", n)),
        ("filter PATCH /v2/images/ID (%d ops)" % len(PATCH_BODY),
         measure_filter(app, bare, "PATCH", "/v2/images/abc", patch,
                        PATCH_TYPE, n)),
        ("filter GET /v2/images (pass-through)",
         measure_filter(app, bare, "GET", "/v2/images", b"", None, n)),
        ("peer: Glance validate, schema-image %d keys" % len(full),
         measure_peer(glance_schema, CREATE_BODY, args.peer_iterations)),
        ("peer: Glance validate, schema-image %d keys" % len(no_traits),
         measure_peer(glance_schema_no_traits, CREATE_BODY,
                      args.peer_iterations)),
        ("ref:  Glance validate, no schema-image",
         measure_peer(glance_base, CREATE_BODY, args.peer_iterations)),
    ]
    print("iterations: filter %d, Glance %d; catalog keys: %d"
          % (n, args.peer_iterations, len(app.cache.rules)))
    print("%-50s %9s %9s %9s" % ("case", "p50 us", "p99 us", "mean us"))
    for name, values in rows:
        print("%-50s %9.1f %9.1f %9.1f" % (name, pct(values, 0.5),
                                           pct(values, 0.99),
                                           statistics.mean(values) / 1000.0))
    filter_p99 = pct(rows[0][1], 0.99)
    peer_p99 = pct(rows[3][1], 0.99)
    print("POST p99: filter %.1f us, Glance schema-image peer %.1f us "
          "(peer/filter = %.0fx); target filter p99 < 500 us: %s"
          % (filter_p99, peer_p99, peer_p99 / filter_p99,
             "met" if filter_p99 < 500 else "MISSED"))


if __name__ == "__main__":
    main()
