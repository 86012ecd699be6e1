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

"""Compare a catalog file with what Glance's metadefs API serves back.

``glance-manage db load_metadefs`` validates nothing and Glance rewrites
some fields on the way (timestamps, owner, links), so "loaded correctly"
means: every field of the file comes back unchanged, properties and
resource-type associations included.
"""

from typing import Any, Dict, List, Mapping

ASSOCIATION_KEYS = ("name", "prefix", "properties_target")


def _associations(items: Any) -> List[Dict[str, Any]]:
    result = []
    for item in items or ():
        result.append({k: item[k] for k in ASSOCIATION_KEYS
                       if item.get(k) is not None})
    return sorted(result, key=lambda a: a.get("name", ""))


def differences(file_doc: Mapping[str, Any],
                api_doc: Mapping[str, Any]) -> List[str]:
    """Human-readable differences; empty when the API serves the file."""
    found = []
    for key, value in file_doc.items():
        if key == "resource_type_associations":
            want, got = _associations(value), _associations(api_doc.get(key))
            if want != got:
                found.append("resource_type_associations: file %s, API %s"
                             % (want, got))
        elif key == "properties":
            got_props = api_doc.get(key) or {}
            for name in sorted(set(value) | set(got_props)):
                if name not in got_props:
                    found.append("property %s: missing in the API" % name)
                elif name not in value:
                    found.append("property %s: only in the API" % name)
                elif value[name] != got_props[name]:
                    found.append("property %s: file %s, API %s"
                                 % (name, value[name], got_props[name]))
        elif api_doc.get(key) != value:
            found.append("%s: file %r, API %r" % (key, value,
                                                  api_doc.get(key)))
    return found
