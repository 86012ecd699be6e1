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

"""Read the catalog from the metadefs API of the Glance the filter runs in.

The filter sends sub-requests straight to the rest of Glance's pipeline
(no network, no extra credentials): it reuses the RequestContext Glance
built for the image request being checked, so it sees exactly what that
user may see of the metadefs API, and public catalog namespaces are
visible to every reader.  Results are cached and refreshed at an interval,
so ``glance-manage db load_metadefs`` takes effect without a restart.
"""

import fnmatch
import json
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence
from urllib import parse

import webob
from oslo_log import log as logging

from glance_ext.exceptions import CatalogUnavailable
from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import rules as rules_mod

LOG = logging.getLogger(__name__)

PAGE_SIZE = 100
# Environ keys a Glance sub-request needs from the original request: the
# RequestContext (stored by Glance's context filter as a webob ad-hoc
# attribute) and the identity headers it was built from.
COPIED_ENVIRON = ("webob.adhoc_attrs", "HTTP_X_AUTH_TOKEN",
                  "HTTP_X_USER_ID", "HTTP_X_PROJECT_ID", "HTTP_X_ROLES",
                  "HTTP_X_IDENTITY_STATUS", "SERVER_NAME", "SERVER_PORT",
                  "HTTP_HOST", "wsgi.url_scheme")


def _get_json(app: Callable, environ: Dict[str, Any], path: str) -> Any:
    base = {k: environ[k] for k in COPIED_ENVIRON if k in environ}
    if "webob.adhoc_attrs" in base:
        base["webob.adhoc_attrs"] = dict(base["webob.adhoc_attrs"])
    request = webob.Request.blank(path, environ=base)
    request.headers["Accept"] = "application/json"
    response = request.get_response(app)
    if response.status_int != 200:
        raise CatalogUnavailable("GET %s answered %s: %s" % (
            path, response.status, response.text[:200].strip()))
    try:
        return json.loads(response.body)
    except ValueError as e:
        raise CatalogUnavailable("GET %s: not JSON: %s" % (path, e))


# Also used by the copy-image filter to read an image through Glance.
get_json = _get_json


def fetch_catalog(app: Callable, environ: Dict[str, Any],
                  resource_type: str,
                  patterns: Sequence[str]) -> catalog_mod.Catalog:
    """List the namespaces of ``resource_type`` and read the matching ones."""
    names: List[str] = []
    path = "/v2/metadefs/namespaces?" + parse.urlencode(
        {"resource_types": resource_type, "limit": PAGE_SIZE})
    while path:
        listing = _get_json(app, environ, path)
        for item in listing.get("namespaces", ()):
            name = item.get("namespace", "")
            if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                names.append(name)
        next_link = listing.get("next")
        path = next_link if next_link and next_link != path else ""
    documents, sources = [], []
    for name in names:
        quoted = parse.quote(name, safe="")
        documents.append(_get_json(app, environ,
                                   "/v2/metadefs/namespaces/" + quoted))
        sources.append("metadefs API namespace %s" % name)
    return catalog_mod.Catalog(documents=documents, sources=sources)


class CachedRules:
    """The compiled rules plus when to read them again.

    One request refreshes at a time; the others keep using the previous
    rules meanwhile instead of piling up on the metadefs API.
    """

    def __init__(self, refresh_interval: float, retry_interval: float,
                 advisory: Sequence[str] = rules_mod.DEFAULT_ADVISORY,
                 clock: Callable[[], float] = time.monotonic):
        self.refresh_interval = refresh_interval
        self.advisory = tuple(advisory)
        self.retry_interval = retry_interval
        self._clock = clock
        self._lock = threading.Lock()
        self.rules: Optional[rules_mod.RuleSet] = None
        self.namespaces: List[str] = []
        self._next_refresh = float("-inf")
        self.last_error: Optional[str] = None

    def get(self, load: Callable[[], catalog_mod.Catalog],
            resource_type: str) -> Optional[rules_mod.RuleSet]:
        if self._clock() < self._next_refresh:
            return self.rules
        # Without any rules yet, wait for the loader; otherwise serve the
        # old rules while another thread refreshes.
        if not self._lock.acquire(blocking=self.rules is None):
            return self.rules
        try:
            if self._clock() < self._next_refresh:
                return self.rules
            try:
                catalog = load()
            except Exception as e:  # any failure must not break requests
                self.last_error = str(e) or type(e).__name__
                self._next_refresh = self._clock() + self.retry_interval
                LOG.warning("glance_ext metadefs enforcement: cannot read "
                            "the catalog from the metadefs API (%s); %s. "
                            "Retrying in %ss.", self.last_error,
                            "keeping the previous catalog"
                            if self.rules is not None else
                            "no catalog yet", self.retry_interval)
                return self.rules
            rules = rules_mod.compile_rules(catalog, resource_type,
                                            self.advisory)
            if not len(rules) and self.rules is None:
                LOG.warning("glance_ext metadefs enforcement: no matching "
                            "namespace is loaded, nothing is enforced; load "
                            "the catalog with glance-manage db "
                            "load_metadefs --path <glance_ext>/metadefs")
            elif catalog.namespaces() != self.namespaces:
                LOG.info("glance_ext metadefs enforcement: %d property keys "
                         "from namespaces %s", len(rules),
                         ", ".join(catalog.namespaces()))
            self.rules = rules
            self.namespaces = catalog.namespaces()
            self.last_error = None
            self._next_refresh = self._clock() + self.refresh_interval
            return rules
        finally:
            self._lock.release()
