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

"""Every value is checked against this project's metadefs catalog.

The same compiled rules the API filter and ``glance-ext metadefs
validate-properties`` use (``glance_ext.metadefs.rules``), read from the
catalog files: the plugin runs inside the import flow without an API
request to read the catalog through. Keys the catalog does not describe
pass (nova ignores them too); advisory keys (os_distro) only warn.
"""

import os
from typing import Dict, Optional, Tuple

from glance_ext.exceptions import CatalogUnavailable
from glance_ext.metadefs import catalog as catalog_mod
from glance_ext.metadefs import rules as rules_mod


# Compiled rule sets by (directory, mtimes): compiled once per change.
_CACHE: Dict[Tuple, rules_mod.RuleSet] = {}


def _key(directory: str) -> Tuple:
    stamps = []
    for path in catalog_mod.catalog_files(directory):
        st = os.stat(path)
        stamps.append((path, st.st_mtime_ns, st.st_size))
    return (directory, tuple(stamps))


def load(directory: Optional[str] = None) -> rules_mod.RuleSet:
    """The compiled catalog rules (cached while the files are unchanged)."""
    directory = directory or catalog_mod.default_directory()
    try:
        key = _key(directory)
        ruleset = _CACHE.get(key)
        if ruleset is None:
            ruleset = rules_mod.compile_rules(
                catalog_mod.load_directory(directory))
            _CACHE.clear()
            _CACHE[key] = ruleset
        return ruleset
    except (OSError, catalog_mod.CatalogError) as exc:
        raise CatalogUnavailable("cannot read the metadefs catalog in %s: %s"
                                 % (directory, exc))


def check(ruleset: rules_mod.RuleSet, key: str,
          value: str) -> Optional[rules_mod.Violation]:
    """The violation of ``key=value``, or None when the catalog allows it."""
    return ruleset.check(key, value)
