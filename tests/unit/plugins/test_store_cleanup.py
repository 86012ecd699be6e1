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

"""A half-written store object left by a crash is deleted through the
store driver, so the image can be imported again.

Each case runs in its own interpreter (glance_store keeps its configured
stores in module globals): glance_store configured for multiple stores as
glance-api does, then ``store_cleanup.remove_partial``.

- file store: the real filesystem driver and a real partial file.
- rbd: the real glance_store rbd driver, but Ceph cannot run here, so the
  ``rados`` and ``rbd`` Python bindings it calls are replaced by a small
  stand-in that records what the driver asked librbd to do; the test
  proves the driver is asked to remove the rbd image named by the image id
  from the configured pool.
- a driver with no name derived from the image id (http): nothing is
  deleted and the result says so, naming the store.
"""

import json
import subprocess
import sys
import textwrap

IMAGE_ID = "0f6b7c2e-1111-4a5b-9c9d-0123456789ab"

_PRELUDE = textwrap.dedent('''
    import json, sys, types
    from oslo_config import cfg
    from glance.common import config  # noqa: registers enabled_backends
    import glance_store
    from glance_store import multi_backend
    CONF = cfg.CONF
    CONF([], project="glance")
    ''')

_FAKE_CEPH = textwrap.dedent('''
    calls = []
    rados = types.ModuleType("rados")
    class Error(Exception): pass
    class ObjectNotFound(Error): pass
    class _Ioctx:
        def __init__(self, pool): self.pool = pool
        def __enter__(self): return self
        def __exit__(self, *a): return False
    class Rados:
        def __init__(self, conffile=None, rados_id=None): pass
        def conf_set(self, *a): pass
        def connect(self): calls.append("connect")
        def shutdown(self): calls.append("shutdown")
        def open_ioctx(self, pool): return _Ioctx(pool)
    rados.Rados, rados.Error, rados.ObjectNotFound = Rados, Error, ObjectNotFound
    rbd = types.ModuleType("rbd")
    for name in ("ImageNotFound", "ImageBusy", "ImageHasSnapshots",
                 "PermissionError", "InvalidArgument"):
        setattr(rbd, name, type(name, (Exception,), {}))
    class RBD:
        def remove(self, ioctx, name):
            calls.append(["remove", ioctx.pool, name])
    rbd.RBD = RBD
    sys.modules["rados"], sys.modules["rbd"] = rados, rbd
    ''')


def _run(code: str):
    proc = subprocess.run([sys.executable, "-c", code],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_file_store_partial_file_is_deleted(tmp_path):
    datadir = tmp_path / "images"
    datadir.mkdir()
    (datadir / IMAGE_ID).write_bytes(b"x" * 4096)       # cut short
    (datadir / "other-image").write_bytes(b"y")
    out = _run(_PRELUDE + textwrap.dedent('''
        CONF.set_override("enabled_backends", {"fs": "file"})
        multi_backend.register_store_opts(CONF)
        CONF.set_override("default_backend", "fs", group="glance_store")
        CONF.set_override("filesystem_store_datadir", %r, group="fs")
        multi_backend.create_multi_stores(CONF)
        from glance_ext.plugins import store_cleanup
        r = store_cleanup.remove_partial("fs", %r)
        print(json.dumps({"removed": r.removed, "unknown": r.unknown}))
        ''') % (str(datadir), IMAGE_ID))
    assert out["removed"] == ["file://%s/%s" % (datadir, IMAGE_ID)]
    assert out["unknown"] is None
    assert sorted(p.name for p in datadir.iterdir()) == ["other-image"]
    # Nothing there (the upload had not begun): nothing to do.
    again = _run(_PRELUDE + textwrap.dedent('''
        CONF.set_override("enabled_backends", {"fs": "file"})
        multi_backend.register_store_opts(CONF)
        CONF.set_override("default_backend", "fs", group="glance_store")
        CONF.set_override("filesystem_store_datadir", %r, group="fs")
        multi_backend.create_multi_stores(CONF)
        from glance_ext.plugins import store_cleanup
        r = store_cleanup.remove_partial("fs", %r)
        print(json.dumps({"removed": r.removed, "unknown": r.unknown}))
        ''') % (str(datadir), IMAGE_ID))
    assert again == {"removed": [], "unknown": None}


def test_rbd_image_is_removed_through_the_rbd_driver():
    out = _run(_PRELUDE + _FAKE_CEPH + textwrap.dedent('''
        CONF.set_override("enabled_backends", {"ceph": "rbd"})
        multi_backend.register_store_opts(CONF)
        CONF.set_override("default_backend", "ceph", group="glance_store")
        CONF.set_override("rbd_store_pool", "images-pool", group="ceph")
        multi_backend.create_multi_stores(CONF)
        from glance_ext.plugins import store_cleanup
        r = store_cleanup.remove_partial("ceph", %r)
        print(json.dumps({"removed": r.removed, "unknown": r.unknown,
                          "calls": calls}))
        ''') % IMAGE_ID)
    assert out["unknown"] is None
    assert out["removed"] == ["rbd://%s" % IMAGE_ID]
    assert ["remove", "images-pool", IMAGE_ID] in out["calls"]


def test_a_store_without_derived_names_is_reported():
    out = _run(_PRELUDE + textwrap.dedent('''
        CONF.set_override("enabled_backends", {"web": "http"})
        multi_backend.register_store_opts(CONF)
        CONF.set_override("default_backend", "web", group="glance_store")
        multi_backend.create_multi_stores(CONF)
        from glance_ext.plugins import store_cleanup
        r = store_cleanup.remove_partial("web", %r)
        print(json.dumps({"removed": r.removed, "unknown": r.unknown}))
        ''') % IMAGE_ID)
    assert out["removed"] == []
    assert "store web (http driver)" in out["unknown"]
    assert IMAGE_ID in out["unknown"]
