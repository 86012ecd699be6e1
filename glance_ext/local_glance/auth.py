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

"""Keystone-less authentication for a local Glance. NOT FOR PRODUCTION.

Glance 33 without keystone builds an unauthenticated context with no roles,
and its RBAC defaults then refuse almost everything. Real deployments put
keystonemiddleware's auth_token here. For the demo and the functional tests
we want Glance's *real* policies to apply, so this filter turns a token of
the form ``user:project:role1,role2`` into the identity headers that
auth_token would have produced; Glance's own ``context`` filter, which runs
next, builds an ordinary RequestContext from them.
"""

import re
import urllib.parse
from typing import Callable, Dict, List, Optional, Tuple

from oslo_config import cfg
import webob
import webob.dec
import webob.exc

# Identity headers a client must never be able to set itself.
_IDENTITY_HEADERS = (
    "X-Identity-Status", "X-User-Id", "X-User", "X-Project-Id",
    "X-Tenant-Id", "X-Tenant", "X-Roles", "X-Service-Catalog",
    "X-Domain-Id", "X-User-Domain-Id", "X-Project-Domain-Id",
    "X-Service-Roles", "X-Is-Admin-Project",
)
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

TOKEN_FORMAT = "user:project:role1,role2"


def make_token(user: str, project: str, roles: List[str]) -> str:
    """Build a token this filter accepts (used by the CLI and the tests)."""
    return "%s:%s:%s" % (user, project, ",".join(roles))


def parse_token(raw: str) -> Tuple[str, str, List[str]]:
    """Split a token into user, project and roles.

    glanceclient percent-encodes header values, so the token is decoded
    first. Raises ValueError with a message saying what is wrong.
    """
    token = urllib.parse.unquote(raw or "").strip()
    parts = token.split(":")
    if len(parts) != 3:
        raise ValueError("token must look like %r, got %d field(s)"
                         % (TOKEN_FORMAT, len(parts)))
    user, project, roles_field = parts
    roles = [r.strip() for r in roles_field.split(",") if r.strip()]
    for label, value in [("user", user), ("project", project)] + [
            ("role", r) for r in roles]:
        if not _NAME.match(value):
            raise ValueError("%s %r is not a valid name (letters, digits, "
                             "'_.@-', at most 64)" % (label, value))
    return user, project, roles


class TokenAuthFilter(object):
    """WSGI filter: identity from a ``user:project:roles`` token."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    @webob.dec.wsgify
    def __call__(self, req: webob.Request):
        for header in _IDENTITY_HEADERS:
            if header in req.headers:
                del req.headers[header]
        raw = req.headers.get("X-Auth-Token")
        if not raw:
            return webob.exc.HTTPUnauthorized(
                explanation="No X-Auth-Token. This local Glance takes a "
                            "token of the form %r (set OS_AUTH_TOKEN)."
                            % TOKEN_FORMAT)
        try:
            user, project, roles = parse_token(raw)
        except ValueError as exc:
            return webob.exc.HTTPUnauthorized(
                explanation="Invalid X-Auth-Token: %s." % exc)
        req.headers["X-Identity-Status"] = "Confirmed"
        req.headers["X-User-Id"] = user
        req.headers["X-Project-Id"] = project
        req.headers["X-Roles"] = ",".join(roles)
        return req.get_response(self.app)


def register_proxy_endpoint_opt(conf: cfg.ConfigOpts) -> None:
    """Make ``[keystone_authtoken] auth_url`` exist.

    A glance-api that receives an import of data staged on another node
    proxies it there with a keystoneauth session carrying the caller's
    token (``glance.context.get_ksa_client``), which reads that option
    first. keystonemiddleware registers it; this filter replaces
    keystonemiddleware, so it registers it instead (the value, written by
    ``local-glance up``, is never contacted: the proxied URL is absolute).
    """
    try:
        conf.register_opt(cfg.StrOpt("auth_url"), group="keystone_authtoken")
    except cfg.DuplicateOptError:
        pass


def filter_factory(global_conf: Dict, **local_conf: Optional[str]
                   ) -> Callable:
    """paste.deploy entry: ``paste.filter_factory = <this module>:filter_factory``."""
    register_proxy_endpoint_opt(cfg.CONF)

    def _filter(app: Callable) -> TokenAuthFilter:
        return TokenAuthFilter(app)
    return _filter
