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

"""Writes the configuration files of a local glance-api.

Glance 33 reads ``glance-image-import.conf`` then ``glance-api.conf`` from
``$OS_GLANCE_CONFIG_DIR`` and the paste pipeline named by
``[paste_deploy] config_file``. The layout mirrors a multi-store
production deployment (file store ``fs`` plus the reserved staging and
tasks stores), so what passes here passes in a real cloud.
"""

import configparser
import dataclasses
import os
import re
import sys
from typing import Dict, List, Optional, Sequence

API_CONF = "glance-api.conf"
IMPORT_CONF = "glance-image-import.conf"
# glance_store's filesystem_store_chunk_size for local-glance's file stores
# (bench/convert_bench.py --chunk-kib measures other sizes).
STORE_CHUNK_SIZE = 1024 * 1024
PASTE_INI = "glance-api-paste.ini"

DEFAULT_STORE = "fs"
_STORE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")

# Overrides are SECTION.KEY=VALUE; a mapping of section -> {key: value}.
Overrides = Dict[str, Dict[str, str]]


@dataclasses.dataclass
class Layout:
    """Where everything of one local Glance lives, below its state dir.

    A one-node Glance keeps everything directly in the state dir, as it
    always did. Node ``i`` of several (``node`` set) has what a controller
    keeps for itself below ``nodes/node-<i>/``: configuration, staging
    (and so the import journal and conversion slots next to it), tasks
    store, lock dir and log; the database, the file stores and state.json
    stay shared at the top. With ``shared_staging`` every node uses the
    top-level ``staging/``, as a deployment with one staging directory
    mounted on every controller does.
    """

    state_dir: str
    node: Optional[int] = None
    shared_staging: bool = False

    def _p(self, *parts: str) -> str:
        return os.path.join(self.state_dir, *parts)

    def _n(self, *parts: str) -> str:
        """A path of this node's own."""
        if self.node is None:
            return self._p(*parts)
        return self._p("nodes", "node-%d" % self.node, *parts)

    def for_node(self, index: int, shared_staging: bool = False
                 ) -> "Layout":
        return Layout(self.state_dir, index, shared_staging)

    @property
    def node_dir(self) -> str:
        return self._n()

    @property
    def etc_dir(self) -> str:
        return self._n("etc")

    @property
    def images_dir(self) -> str:
        return self._p("images")

    def store_dir(self, store: str) -> str:
        """Data directory of a file store; the first store ``fs`` keeps
        ``images/`` so a one-store Glance looks as it always did."""
        return self.images_dir if store == DEFAULT_STORE else \
            self._p("images-%s" % store)

    @property
    def staging_dir(self) -> str:
        return self._p("staging") if self.shared_staging else \
            self._n("staging")

    @property
    def tasks_dir(self) -> str:
        return self._n("tasks")

    @property
    def lock_dir(self) -> str:
        return self._n("locks")

    @property
    def log_file(self) -> str:
        return self._n("glance-api.log")

    @property
    def state_file(self) -> str:
        return self._p("state.json")

    @property
    def env_file(self) -> str:
        return self._p("env")

    @property
    def sqlite_file(self) -> str:
        return self._p("glance.sqlite")

    def ensure(self) -> None:
        for path in (self.etc_dir, self.images_dir, self.staging_dir,
                     self.tasks_dir, self.lock_dir):
            os.makedirs(path, exist_ok=True)


def parse_overrides(items: Sequence[str]) -> Overrides:
    """Parse ``SECTION.KEY=VALUE`` items; ValueError names a bad one."""
    result: Overrides = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        section, dot, key = name.strip().rpartition(".")
        if not sep or not dot or not section or not key:
            raise ValueError(
                "option %r must look like SECTION.KEY=VALUE, for example "
                "glance_ext_validate.claimed_format_policy=reject" % item)
        result.setdefault(section, {})[key] = value.strip()
    return result


def _write_ini(path: str, sections: Overrides) -> None:
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # keep option names as written
    for section, values in sections.items():
        if section != "DEFAULT" and not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            parser.set(section, key, value)
    with open(path, "w") as fh:
        parser.write(fh)


def _merge(base: Overrides, extra: Overrides) -> Overrides:
    merged = {s: dict(v) for s, v in base.items()}
    for section, values in extra.items():
        merged.setdefault(section, {}).update(values)
    return merged


def check_stores(stores: Sequence[str]) -> List[str]:
    """Store ids for ``enabled_backends``; ValueError says what is wrong."""
    stores = list(stores) or [DEFAULT_STORE]
    for store in stores:
        if not _STORE_NAME.match(store) or store.startswith("os_glance"):
            raise ValueError(
                "store id %r must be lower-case letters, digits and '_', "
                "starting with a letter (os_glance* is reserved)" % store)
    if len(set(stores)) != len(stores):
        raise ValueError("store ids must differ: %s" % ",".join(stores))
    return stores


def api_conf(layout: Layout, port: int, database_url: str,
             web_download_ports: Sequence[int],
             extra: Overrides,
             stores: Sequence[str] = (DEFAULT_STORE,)) -> Overrides:
    """The content of glance-api.conf: one file store per store id, the
    first being the default backend."""
    ports = ",".join(str(p) for p in web_download_ports)
    base: Overrides = {
        "DEFAULT": {
            "enabled_backends": ",".join("%s:file" % s for s in stores),
            "enabled_import_methods":
                "[glance-direct,web-download,copy-image]",
            "log_file": layout.log_file,
            "worker_self_reference_url": "http://127.0.0.1:%d" % port,
        },
        "database": {"connection": database_url},
        "glance_store": {"default_backend": stores[0]},
        "os_glance_staging_store": {
            "filesystem_store_datadir": layout.staging_dir},
        "os_glance_tasks_store": {
            "filesystem_store_datadir": layout.tasks_dir},
        "paste_deploy": {
            "config_file": os.path.join(layout.etc_dir, PASTE_INI)},
        "import_filtering_opts": {
            "allowed_schemes": "[http,https]",
            "allowed_hosts": "[127.0.0.1]",
            "allowed_ports": "[%s]" % ports,
        },
        "oslo_concurrency": {"lock_path": layout.lock_dir},
        # Read by Glance when it proxies an import to the staging node
        # (see auth.register_proxy_endpoint_opt); never contacted.
        "keystone_authtoken": {"auth_url": "http://127.0.0.1:%d" % port},
        # prlimit runs `sys.executable -m oslo_concurrency.prlimit`; make
        # sure that is this environment's Python, whatever the server.
        "wsgi": {"python_interpreter": sys.executable},
    }
    for store in stores:
        # Thin provisioning: zero chunks of an upload become holes instead
        # of written zeros. 1 MiB chunks instead of glance_store's 64 KiB:
        # Glance yields (sleep(0)) after every chunk its upload reads, and
        # at 64 KiB those yields took a third of a streamed import's time
        # (docs/convert.md, "Store settings").
        base[store] = {"filesystem_store_datadir": layout.store_dir(store),
                       "filesystem_thin_provisioning": "true",
                       "filesystem_store_chunk_size": str(STORE_CHUNK_SIZE)}
    return _merge(base, extra)


def import_conf(plugins: Sequence[str], extra: Overrides) -> Overrides:
    """The content of glance-image-import.conf."""
    base: Overrides = {
        "image_import_opts": {
            "image_import_plugins": "[%s]" % ",".join(plugins)},
    }
    return _merge(base, extra)


def paste_ini(paste_filters: Sequence[str]) -> str:
    """The paste pipeline: our token filter, Glance's context, extras."""
    extra_names: List[str] = []
    extra_sections: List[str] = []
    for index, factory in enumerate(paste_filters):
        if ":" not in factory:
            raise ValueError("paste filter %r must look like "
                             "module.path:factory" % factory)
        name = "extra_filter_%d" % index
        extra_names.append(name)
        extra_sections.append("[filter:%s]\npaste.filter_factory = %s\n"
                              % (name, factory))
    pipeline = " ".join(["http_proxy_to_wsgi", "versionnegotiation",
                         "glance_ext_token_auth", "context"]
                        + extra_names + ["rootapp"])
    return "\n".join([
        "# Written by glance-ext local-glance. Keystone-less: see",
        "# glance_ext/local_glance/auth.py. Not for production.",
        "[composite:glance-api]",
        "paste.composite_factory = glance.api:root_app_factory",
        "/: api",
        "/healthcheck: healthcheck",
        "",
        "[composite:api]",
        "paste.composite_factory = glance.api:pipeline_factory",
        "default = %s" % pipeline,
        "",
        "[composite:rootapp]",
        "paste.composite_factory = glance.api:root_app_factory",
        "/: apiversions",
        "/v2: apiv2app",
        "",
        "[app:apiversions]",
        "paste.app_factory = glance.api.versions:create_resource",
        "",
        "[app:apiv2app]",
        "paste.app_factory = glance.api.v2.router:API.factory",
        "",
        "[app:healthcheck]",
        "paste.app_factory = oslo_middleware:Healthcheck.app_factory",
        "backends = disable_by_file",
        "disable_by_file_path = /nonexistent/glance-ext-healthcheck-off",
        "",
        "[filter:versionnegotiation]",
        "paste.filter_factory = glance.api.middleware.version_negotiation:"
        "VersionNegotiationFilter.factory",
        "",
        "[filter:context]",
        "paste.filter_factory = glance.api.middleware.context:"
        "ContextMiddleware.factory",
        "",
        "[filter:glance_ext_token_auth]",
        "paste.filter_factory = glance_ext.local_glance.auth:filter_factory",
        "",
        "[filter:http_proxy_to_wsgi]",
        "paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory",
        "",
    ] + extra_sections)


def write_all(layout: Layout, api: Overrides, imp: Overrides,
              paste: str) -> None:
    layout.ensure()
    for section, values in api.items():
        if "filesystem_store_datadir" in values:
            os.makedirs(values["filesystem_store_datadir"], exist_ok=True)
    _write_ini(os.path.join(layout.etc_dir, API_CONF), api)
    _write_ini(os.path.join(layout.etc_dir, IMPORT_CONF), imp)
    with open(os.path.join(layout.etc_dir, PASTE_INI), "w") as fh:
        fh.write(paste)
