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

"""Merge discovered properties, operator rules and what the user set.

Precedence, lowest first: discovered, ``static_properties``, rules in file
order (a later rule wins over an earlier one). A property the user set
when creating the image is kept unless the rule that sets it says
``override_user: true``; discovered values never replace a user's. Every
value is checked against the metadefs catalog before it is set: a
discovered value the catalog refuses is dropped with a note (the guest is
odd, the import goes on); a rule value it refuses is a configuration
error.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

from glance_ext.injection import rules as rules_mod
from glance_ext.metadefs import rules as md_rules


@dataclasses.dataclass
class Plan:
    to_set: Dict[str, str] = dataclasses.field(default_factory=dict)
    # key -> (source, value): where each value came from
    sources: Dict[str, str] = dataclasses.field(default_factory=dict)
    kept_user: Dict[str, Tuple[str, str]] = dataclasses.field(
        default_factory=dict)   # key -> (user value, ours)
    notes: List[str] = dataclasses.field(default_factory=list)


def build(discovered: Dict[str, str],
          applied: Sequence[Tuple[rules_mod.Rule, Dict[str, str]]],
          user_props: Dict[str, str],
          ruleset: md_rules.RuleSet, own_prefix: str = "") -> Plan:
    """Raises ``rules.RuleError`` for a rule value the catalog refuses.

    Keys starting with ``own_prefix`` (the plugin's own records, such as
    check results) are always written: a user must not pre-set a "pass".
    """
    plan = Plan()
    wanted: Dict[str, Tuple[str, str, bool]] = {}  # key->(value,src,override)
    for key, value in discovered.items():
        violation = ruleset.check(key, value)
        if violation is not None and not violation.advisory:
            plan.notes.append("discovered %s not set: %s"
                              % (key, violation.message))
            continue
        if violation is not None:
            plan.notes.append("advisory: %s" % violation.message)
        wanted[key] = (value, "discovered", False)
    for rule, props in applied:
        for key, value in props.items():
            # Literal values were checked at load; rendered ones only now.
            rules_mod.check_value(ruleset, rule.label, key, value)
            wanted[key] = (value, rule.label, rule.override_user)
    for key, (value, source, override) in wanted.items():
        user: Optional[str] = user_props.get(key)
        if own_prefix and key.startswith(own_prefix):
            override = True
        if user is not None and not override:
            if user != value:
                plan.kept_user[key] = (user, value)
            continue
        if user == value:
            continue
        plan.to_set[key] = value
        plan.sources[key] = source
    return plan
