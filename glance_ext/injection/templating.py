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

"""Property values templated from what was detected: ``{os.distro}``.

Hand-written on purpose: ``str.format`` would let a rules file reach
object attributes (``{x.__class__}``) and Jinja2 is a large dependency for
substitution of a dozen names. Only the names in
``facts.TEMPLATE_VARIABLES`` exist; ``{{`` and ``}}`` are literal braces.
"""

import re
from typing import Dict, List, Optional

from glance_ext.injection import facts as facts_mod
from glance_ext.exceptions import MissingValue, TemplateError

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def variables_used(template: str) -> List[str]:
    """The names a template uses; raises TemplateError if it is invalid."""
    names = []
    for match in _TOKEN.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if match.group(1) is None:
            raise TemplateError("stray %r in %r (write %s for a literal "
                                "brace)" % (token, template, token * 2))
        name = match.group(1).strip()
        if name not in facts_mod.TEMPLATE_VARIABLES:
            raise TemplateError(
                "unknown name {%s} in %r; known: %s"
                % (name, template, ", ".join(
                    "{%s}" % v for v in facts_mod.TEMPLATE_VARIABLES)))
        names.append(name)
    return names


def is_template(value: str) -> bool:
    return "{" in value or "}" in value


def render(template: str, values: Dict[str, Optional[str]]) -> str:
    """Substitute the names; raises MissingValue for a name without value."""
    variables_used(template)

    def substitute(match: "re.Match[str]") -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = match.group(1).strip()
        value = values.get(name)
        if value in (None, ""):
            raise MissingValue(name)
        return str(value)

    return _TOKEN.sub(substitute, template)
