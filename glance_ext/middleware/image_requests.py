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

"""Which image properties an image create or update request sets.

Glance v2 has two write paths for image properties: ``POST /v2/images``
(a JSON object; every key that is not a core attribute is a property) and
``PATCH /v2/images/{id}`` (a JSON patch, in the v2.1 ``op``/``path`` form
or the older v2.0 ``{"add": "/key"}`` form).  Only ``add`` and
``replace`` set a value; ``remove`` never needs checking.
"""

import json
import re
from typing import Any, List, Optional, Tuple

CREATE_PATH = re.compile(r"^/v2(?:\.\d+)?/images/?$")
UPDATE_PATH = re.compile(r"^/v2(?:\.\d+)?/images/[^/]+/?$")
SETTING_OPS = ("add", "replace")


def is_image_write(method: str, path: str) -> bool:
    if method == "POST":
        return bool(CREATE_PATH.match(path))
    if method == "PATCH":
        return bool(UPDATE_PATH.match(path))
    return False


def _pointer_key(path: Any) -> Optional[str]:
    """The top-level key of a JSON pointer, or None for deeper paths."""
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    token = path[1:]
    if "/" in token:
        return None  # e.g. /locations/0: not a property
    return token.replace("~1", "/").replace("~0", "~")


def properties_set(method: str, body: bytes) -> List[Tuple[str, Any]]:
    """(key, value) pairs the request would store; [] if body unreadable.

    An unreadable body is left to Glance, which answers its own 400.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    if method == "POST":
        if not isinstance(data, dict):
            return []
        return list(data.items())
    if not isinstance(data, list):
        return []
    found = []
    for change in data:
        if not isinstance(change, dict):
            continue
        if "op" in change:
            if change.get("op") in SETTING_OPS and "value" in change:
                key = _pointer_key(change.get("path"))
                if key is not None:
                    found.append((key, change["value"]))
            continue
        for op in SETTING_OPS:  # v2.0 form
            if op in change and "value" in change:
                key = _pointer_key(change[op])
                if key is not None:
                    found.append((key, change["value"]))
    return found
