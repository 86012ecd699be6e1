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

"""The paste filter that keeps copy-image from breaking the store formats.

Glance runs no import plugin for copy-image, so copying a qcow2 image to a
store whose target format (``[glance_ext_convert] store_formats``) is raw
would silently store qcow2 there. This filter refuses such a
``POST /v2/images/{id}/import`` with a 409 in Glance's error format that
names the image, the store, both formats and what to do (the decision is
``conversion.target.copy_refusal``); every other request goes straight
through. ``[glance_ext_convert] allow_copy_image_format_change = true``
lets such copies through. It sits after Glance's context filter: the
image is read through Glance's own API with the caller's context, so an
image the caller cannot see gets Glance's own answer::

    [filter:glance_ext_copy_image]
    paste.filter_factory = glance_ext.middleware.copy_image:filter_factory
"""

import json
import re
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

import webob
from oslo_config import cfg
from oslo_log import log as logging

from glance_ext.conversion import options as convert_options
from glance_ext.conversion import target as target_mod
from glance_ext.conversion.settings import Settings
from glance_ext.exceptions import SettingsError
from glance_ext.middleware import catalog_source
from glance_ext.middleware.enforcement import error_response

LOG = logging.getLogger(__name__)
IMPORT_PATH = re.compile(r"^/v2(?:\.\d+)?/images/([^/]+)/import/?$")
RESERVED_STORE_PREFIX = "os_glance_"


def copy_request(method: str, path: str, body: bytes
                 ) -> Optional[Dict[str, Any]]:
    """The import body when this is a copy-image request, else None."""
    if method != "POST" or not IMPORT_PATH.match(path):
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("method"),
                                                    dict):
        return None
    if data["method"].get("name") != "copy-image":
        return None
    return data


def target_stores(body: Dict[str, Any], conf: cfg.ConfigOpts) -> List[str]:
    """The stores a copy-image names (or every store for all_stores)."""
    if body.get("all_stores"):
        backends = getattr(conf, "enabled_backends", None) or {}
        return sorted(s for s in backends
                      if not s.startswith(RESERVED_STORE_PREFIX))
    stores = body.get("stores") or []
    return [s for s in stores if isinstance(s, str)]


class CopyImageFormats:
    """WSGI filter; see the module docstring."""

    def __init__(self, application: Callable, conf: cfg.ConfigOpts) -> None:
        self.application = application
        self.conf = conf

    def __call__(self, environ: Dict[str, Any],
                 start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or \
                not IMPORT_PATH.match(path):
            return self.application(environ, start_response)
        request = webob.Request(environ)
        return self._inspect(request)(environ, start_response)

    def _inspect(self, request: webob.Request) -> Callable:
        body = copy_request(request.method, request.path_info, request.body)
        if body is None:
            return self.application
        try:
            settings = Settings.from_conf(self.conf)
        except SettingsError as exc:
            LOG.error("glance_ext copy-image check skipped: %s", exc)
            return self.application
        image_id = IMPORT_PATH.match(request.path_info).group(1)
        try:
            image = catalog_source.get_json(
                self.application, request.environ, "/v2/images/" + image_id)
        except Exception as exc:  # Glance answers the import itself
            LOG.debug("copy-image check: image %s not read: %s", image_id,
                      exc)
            return self.application
        refusal = target_mod.copy_refusal(
            settings, image_id, image.get("disk_format") or "",
            target_stores(body, self.conf))
        if refusal is None:
            return self.application
        LOG.info("glance_ext refused copy-image of image %s: %s", image_id,
                 refusal)
        return error_response(request, 409, "Conflict", refusal)


def filter_factory(global_conf: Mapping[str, str],
                   **local_conf: str) -> Callable[[Callable], Callable]:
    """Paste entry point (``paste.filter_factory``)."""
    convert_options.register_opts(cfg.CONF)

    def _filter(app: Callable) -> CopyImageFormats:
        return CopyImageFormats(app, cfg.CONF)
    return _filter
