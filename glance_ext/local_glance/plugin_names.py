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

"""Resolving ``--plugins`` to import-plugin entry points.

Glance only logs a WARNING for a misspelled plugin and the import then
goes ``active`` without it, which hides mistakes. Here an unknown name is
an error before anything starts.
"""

from importlib import metadata
from typing import List, Sequence

from glance_ext import plugins
from glance_ext.local_glance import errors

NAMESPACE = "glance.image_import.plugins"
OUR_PREFIX = "glance_ext_"
CANONICAL_ORDER = plugins.ORDER


def available() -> List[str]:
    """Every import plugin installed in this environment (Glance's too)."""
    return sorted({ep.name for ep in metadata.entry_points(group=NAMESPACE)})


def ours() -> List[str]:
    """Our installed plugins, in the order they must run."""
    names = [n for n in available() if n.startswith(OUR_PREFIX)]
    rank = {n: i for i, n in enumerate(CANONICAL_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def resolve(requested: Sequence[str]) -> List[str]:
    """``all`` means all of ours; anything else must be installed."""
    result: List[str] = []
    known = available()
    for name in requested:
        name = name.strip()
        if not name:
            continue
        if name == "all":
            result.extend(n for n in ours() if n not in result)
            continue
        if name not in known:
            raise errors.LocalGlanceError(
                "unknown import plugin %r; installed plugins are: %s"
                % (name, ", ".join(known) or "(none)"))
        if name not in result:
            result.append(name)
    return result
