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

"""The paste filter that enforces the metadefs catalog on image writes.

Glance never checks image properties against metadefs, so a typo such as
``hw_disk_bus=virtoi`` is stored and only fails (or is silently ignored)
when nova boots the image.  This filter refuses such requests with a 400
that names the property, the value and what is allowed.  It sits after
Glance's context filter, reads the catalog from this Glance's metadefs API
(see catalog_source) and checks only ``POST /v2/images`` and
``PATCH /v2/images/{id}``; every other request goes straight through.
Keys the catalog does not describe pass, as they do in nova.

Paste configuration::

    [filter:metadefs-enforcement]
    paste.filter_factory = glance_ext.middleware:filter_factory
    # optional, override [glance_ext_metadefs] in glance-api.conf:
    refresh_interval = 60
"""

import html
from typing import Any, Callable, Dict, Iterable, List, Mapping

import webob
from oslo_config import cfg
from oslo_log import log as logging

from glance_ext.metadefs import options
from glance_ext.metadefs import rules as rules_mod
from glance_ext.middleware import catalog_source
from glance_ext.middleware import image_requests

LOG = logging.getLogger(__name__)

_CONVERTERS: Dict[str, Callable[[str], Any]] = {
    "refresh_interval": int,
    "retry_interval": int,
    "namespaces": lambda v: [p.strip() for p in v.split(",") if p.strip()],
    "resource_type": str,
    "advisory_properties": lambda v: [p.strip() for p in v.split(",")
                                      if p.strip()],
    "fail_closed": lambda v: v.strip().lower() in rules_mod.TRUE_STRINGS,
}


class Settings:
    """Effective options: glance-api.conf, overridden by paste values."""

    def __init__(self, conf: cfg.ConfigOpts, local_conf: Mapping[str, str]):
        options.register_opts(conf)
        group = getattr(conf, options.GROUP)
        for name, convert in _CONVERTERS.items():
            value = getattr(group, name)
            if name in local_conf:
                try:
                    value = convert(local_conf[name])
                except ValueError:
                    raise ValueError(
                        "paste option %s=%r of glance_ext.middleware is not "
                        "valid" % (name, local_conf[name]))
            setattr(self, name, value)
        unknown = sorted(set(local_conf) - set(_CONVERTERS))
        if unknown:
            LOG.warning("glance_ext.middleware: unknown paste options %s "
                        "ignored", ", ".join(unknown))


def error_response(request: webob.Request, status: int, title: str,
                   message: str) -> webob.Response:
    """An error in the shape Glance's own errors have for this client.

    Glance (webob) answers a client that asks for JSON with the body
    ``{"message", "code", "title"}``, and any other client with an HTML
    page. Neither the glance CLI nor openstacksdk (openstackclient) sends
    an Accept header, and both read the message out of such a page (tags
    stripped); a root-level JSON body, on the other hand, breaks the glance
    CLI's parser (it expects nested objects) and a text/plain one is not
    shown by openstacksdk at all. The page is written here rather than by
    webob, whose template escapes quotes, which the glance CLI would show
    as ``&#x27;``: only ``&``, ``<`` and ``>`` are escaped.
    """
    code = "%d %s" % (status, title)
    # No Accept header or */*: the first offer, the HTML page.
    offers = request.accept.acceptable_offers(["text/html",
                                               "application/json"])
    if offers and offers[0][0] == "application/json":
        return webob.Response(status=status, charset="utf-8",
                              content_type="application/json",
                              json_body={"message": message, "code": code,
                                         "title": title})
    text = html.escape(message, quote=False)
    return webob.Response(
        status=status, content_type="text/html", charset="utf-8",
        text="<html>\n <head>\n  <title>%s</title>\n </head>\n <body>\n"
             "  <h1>%s</h1>\n  %s<br /><br />\n </body>\n</html>\n"
             % (code, code, text))


class MetadefsEnforcement:
    """WSGI filter; see the module docstring."""

    def __init__(self, application: Callable, settings: Settings):
        self.application = application
        self.settings = settings
        self.cache = catalog_source.CachedRules(
            settings.refresh_interval, settings.retry_interval,
            advisory=settings.advisory_properties)

    def __call__(self, environ: Dict[str, Any],
                 start_response: Callable) -> Iterable[bytes]:
        # Fast path: only image creates and updates are inspected.
        if not image_requests.is_image_write(environ.get("REQUEST_METHOD", ""),
                                             environ.get("PATH_INFO", "")):
            return self.application(environ, start_response)
        return self._inspect(webob.Request(environ))(environ, start_response)

    def _load(self, environ: Dict[str, Any]) -> Callable:
        return lambda: catalog_source.fetch_catalog(
            self.application, environ, self.settings.resource_type,
            self.settings.namespaces)

    def _inspect(self, request: webob.Request) -> Callable:
        rules = self.cache.get(self._load(request.environ),
                               self.settings.resource_type)
        if rules is None:
            if self.settings.fail_closed:
                return error_response(
                    request, 503, "Service Unavailable",
                    "Image properties cannot be checked: the metadefs "
                    "catalog could not be read (%s). Try again later."
                    % self.cache.last_error)
            return self.application
        if not len(rules):
            return self.application
        pairs = image_requests.properties_set(request.method, request.body)
        violations: List[rules_mod.Violation] = []
        for key, value in pairs:
            violation = rules.check(key, value)
            if violation is None:
                continue
            if violation.advisory:
                LOG.warning("glance_ext metadefs enforcement (advisory, "
                            "accepted): %s %s: %s", request.method,
                            request.path_info, violation.message)
                continue
            violations.append(violation)
        if not violations:
            return self.application
        message = " ".join(v.message for v in violations)
        LOG.info("glance_ext metadefs enforcement refused %s %s: %s",
                 request.method, request.path_info, message)
        return error_response(request, 400, "Bad Request", message)


def filter_factory(global_conf: Mapping[str, str],
                   **local_conf: str) -> Callable[[Callable], Callable]:
    """Paste entry point (``paste.filter_factory``)."""
    settings = Settings(cfg.CONF, local_conf)

    def _filter(app: Callable) -> MetadefsEnforcement:
        return MetadefsEnforcement(app, settings)
    return _filter
