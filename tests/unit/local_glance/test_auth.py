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

import pytest
import webob

from glance_ext.local_glance import auth


def _echo_app(environ, start_response):
    req = webob.Request(environ)
    body = "|".join(req.headers.get(h, "-") for h in (
        "X-Identity-Status", "X-User-Id", "X-Project-Id", "X-Roles",
        "X-Service-Catalog"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


def _call(headers):
    app = auth.filter_factory({})(_echo_app)
    return webob.Request.blank("/v2/images", headers=headers).get_response(app)


def test_token_becomes_identity_headers():
    resp = _call({"X-Auth-Token": "alice:p1:member,reader"})
    assert resp.status_int == 200
    assert resp.text == "Confirmed|alice|p1|member,reader|-"


def test_percent_encoded_token_is_decoded():
    # glanceclient percent-encodes header values.
    resp = _call({"X-Auth-Token": "alice%3Ap1%3Aadmin%2Cmember"})
    assert resp.text == "Confirmed|alice|p1|admin,member|-"


def test_client_cannot_forge_identity_headers():
    resp = _call({"X-Auth-Token": "bob:p2:reader", "X-Roles": "admin",
                  "X-Service-Catalog": "[]", "X-User-Id": "root"})
    assert resp.text == "Confirmed|bob|p2|reader|-"


@pytest.mark.parametrize("token,reason", [
    (None, "No X-Auth-Token"),
    ("justone", "got 1 field"),
    ("a:b:c:d", "got 4 field"),
    ("a b:p:member", "user 'a b' is not a valid name"),
    ("u::member", "project '' is not a valid name"),
])
def test_bad_tokens_get_401_saying_why(token, reason):
    headers = {"X-Auth-Token": token} if token else {}
    resp = _call(headers)
    assert resp.status_int == 401
    assert reason in resp.text


def test_make_token_round_trips():
    token = auth.make_token("u", "p", ["admin", "member"])
    assert auth.parse_token(token) == ("u", "p", ["admin", "member"])
