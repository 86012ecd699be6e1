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

"""Put glance_ext's paste filters into an existing glance-api-paste.ini.

Glance 33's paste file has no single ``pipeline``: the composite ``api``
(``glance.api:pipeline_factory``) holds one pipeline per deployment flavor
(``default``, ``keystone``, ``keystone+caching`` ...), and which one runs
depends on ``[paste_deploy] flavor``. Telling an operator to "add the
filter to the pipeline" is therefore not enough; this module edits every
pipeline of the file the same way, keeping its comments and layout:

- ``glance_ext_metadefs`` (the metadefs enforcement) right after Glance's
  ``context`` (or ``unauthenticated-context``) filter: it needs the
  request context to read the catalog through the metadefs API;
- ``glance_ext_copy_image`` (copy-image may not break the per-store
  format) right after the context filter too: it reads the image through
  Glance's API with the caller's context;
- ``glance_ext_recovery`` (start-up recovery of interrupted imports)
  right before the application: it only needs to be loaded.

Running it twice changes nothing.
"""

import configparser
import dataclasses
import re
from typing import Dict, List, Sequence, Tuple
from glance_ext.exceptions import PasteConfigError

RECOVERY = "glance_ext_recovery"
METADEFS = "glance_ext_metadefs"
COPY_IMAGE = "glance_ext_copy_image"
FACTORIES: Dict[str, str] = {
    RECOVERY: "glance_ext.middleware.startup_recovery:filter_factory",
    METADEFS: "glance_ext.middleware:filter_factory",
    COPY_IMAGE: "glance_ext.middleware.copy_image:filter_factory",
}
CONTEXT_FILTERS = ("context", "unauthenticated-context")
PIPELINE_FACTORY = "glance.api:pipeline_factory"


@dataclasses.dataclass(frozen=True)
class Edit:
    """What ``add_filters`` changed: (section, key) of each pipeline."""

    pipelines: Tuple[Tuple[str, str], ...]
    added_sections: Tuple[str, ...]


def _pipeline_keys(parser: configparser.RawConfigParser
                   ) -> List[Tuple[str, str]]:
    keys = []
    for section in parser.sections():
        if section.startswith("pipeline:"):
            keys.append((section, "pipeline"))
        elif section.startswith("composite:") and parser.get(
                section, "paste.composite_factory",
                fallback="").strip() == PIPELINE_FACTORY:
            keys += [(section, k) for k in parser.options(section)
                     if k != "paste.composite_factory"]
    return keys


def insert(names: Sequence[str], wanted: Sequence[str]) -> List[str]:
    """One pipeline (filters then the app) with our filters in place."""
    out = list(names)
    for name in (COPY_IMAGE, METADEFS):
        if name in wanted and name not in out:
            ctx = [i for i, n in enumerate(out) if n in CONTEXT_FILTERS]
            out.insert(ctx[-1] + 1 if ctx else len(out) - 1, name)
    if RECOVERY in wanted and RECOVERY not in out:
        out.insert(len(out) - 1, RECOVERY)
    return out


def add_filters(text: str,
                wanted: Sequence[str] = (METADEFS, COPY_IMAGE, RECOVERY)
                ) -> Tuple[str, Edit]:
    """Return ``text`` with the ``wanted`` filters in every pipeline."""
    parser = configparser.RawConfigParser(strict=False,
                                          inline_comment_prefixes=None)
    parser.optionxform = str     # paste keys are case-sensitive
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise PasteConfigError("not a paste.deploy ini file: %s" % exc)
    keys = _pipeline_keys(parser)
    if not keys:
        raise PasteConfigError(
            "no pipeline found (no [pipeline:...] section and no composite "
            "using %s): is this glance-api-paste.ini?" % PIPELINE_FACTORY)
    new_values = {}
    for section, key in keys:
        names = parser.get(section, key).split()
        if not names:
            raise PasteConfigError("[%s] %s is empty" % (section, key))
        new_values[(section, key)] = " ".join(insert(names, wanted))
    lines = text.splitlines()
    out: List[str] = []
    section = None
    skipping = False
    for line in lines:
        header = re.match(r"^\s*\[([^\]]+)\]", line)
        if header:
            section = header.group(1).strip()
            skipping = False
        elif skipping and line[:1] in (" ", "\t") and line.strip():
            continue              # continuation of a value we rewrote
        else:
            skipping = False
            match = re.match(r"^([^=#;\s][^=]*?)\s*=", line)
            if match and (section, match.group(1)) in new_values:
                out.append("%s = %s" % (match.group(1),
                                        new_values[(section,
                                                    match.group(1))]))
                skipping = True
                continue
        out.append(line)
    added = []
    for name in wanted:
        if not parser.has_section("filter:" + name):
            added.append("filter:" + name)
            out += ["", "[filter:%s]" % name,
                    "paste.filter_factory = %s" % FACTORIES[name]]
    return "\n".join(out) + "\n", Edit(tuple(keys), tuple(added))
