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

"""Which disk_format an import is converted to.

Glance's image_conversion has one output format for the whole cloud; a
Ceph store wants raw (copy-on-write clones) while a file store is better
served by qcow2. The decision here takes the import's stores, the detected
source format and the operator's rules, and refuses rather than guesses
when stores disagree.
"""

import dataclasses
from typing import Optional, Sequence

from glance_ext.conversion import options
from glance_ext.conversion.settings import Settings
from glance_ext.conversion import store_check
from glance_ext.exceptions import TargetError


@dataclasses.dataclass(frozen=True)
class Decision:
    # None: keep the image as it is (no conversion).
    target_format: Optional[str]
    reason: str

    @property
    def convert(self) -> bool:
        return self.target_format is not None


# Formats that are raw bytes to qemu: converting one of them to raw changes
# nothing, so they are kept (a gpt-labelled disk claimed raw stays raw).
RAW_LIKE = ("raw", "gpt")


def choose(settings: Settings, source_format: str,
           stores: Sequence[Optional[str]]) -> Decision:
    """Decide the target format for one import.

    Precedence: a source-format rule, then the stores' formats (with
    ``store_precedence`` to settle a disagreement), then the default.
    """
    rule = settings.source_rule_map.get(source_format)
    if rule == options.KEEP:
        return Decision(None, "source format %s is kept as is "
                              "(source_format_rules)" % source_format)
    if rule:
        return _same_or(rule, source_format,
                        "source_format_rules %s:%s" % (source_format, rule))
    named = [s for s in stores if s]
    if not named:
        return _same_or(settings.default_format, source_format,
                        "default_format")
    wanted = {s: settings.store_format_map.get(s, settings.default_format)
              for s in named}
    formats = set(wanted.values())
    if len(formats) == 1:
        fmt = formats.pop()
        return _same_or(fmt, source_format,
                        "store%s %s" % ("s" if len(named) > 1 else "",
                                        ", ".join(named)))
    for store in settings.store_precedence:
        if store in wanted:
            return _same_or(wanted[store], source_format,
                            "store_precedence picks store %s" % store)
    raise TargetError(
        "the stores of this import want different disk formats (%s); import "
        "to stores that share a format, or set [%s] store_precedence"
        % (", ".join("%s: %s" % (s, wanted[s]) for s in sorted(wanted)),
           options.GROUP))


def _same_or(target: str, source: str, why: str) -> Decision:
    if target == source or (target == "raw" and source in RAW_LIKE):
        return Decision(None, "already %s (%s)" % (target, why))
    return Decision(target, why)


def normalize(decision: Decision, source_format: str,
              store_refusal: Optional[str]) -> Decision:
    """Re-write an image in its own format when Glance's store check would
    refuse it as it is (see ``store_check``)."""
    if decision.convert or not store_refusal or \
            source_format not in options.OUTPUT_FORMATS:
        return decision
    return Decision(source_format, "re-written as %s because %s"
                    % (source_format, store_refusal))


def decide(settings: Settings, source_format: str,
           stores: Sequence[Optional[str]], path: str,
           stored_as: str) -> Decision:
    """The conversion decision for ``path`` (detected as ``source_format``,
    to be stored as ``stored_as``): ``choose``, then ``normalize`` against
    Glance's own store check. The plugin and ``glance-ext convert`` both
    decide here."""
    decision = choose(settings, source_format, stores)
    if not decision.convert:
        decision = normalize(decision, source_format,
                             store_check.refusal(path, stored_as))
    return decision


def copy_refusal(settings: Settings, image_id: str, disk_format: str,
                 stores: Sequence[str]) -> Optional[str]:
    """Why a copy-image of an image stored as ``disk_format`` to
    ``stores`` would break the per-store format, or None when it may go.

    Glance runs no import plugin for copy-image: the data is copied as it
    is, so a qcow2 image copied to a store that wants raw would be kept
    there as qcow2. Judged like an import: a source-format rule first
    (``keep`` allows it anywhere), then each store's format; formats this
    plugin does not write (iso, ami ...) are not judged.
    """
    if settings.allow_copy_image_format_change or \
            disk_format not in options.OUTPUT_FORMATS:
        return None
    rule = settings.source_rule_map.get(disk_format)
    if rule == options.KEEP:
        return None
    wrong = []
    for store in stores:
        wanted = rule or settings.store_format_map.get(
            store, settings.default_format)
        if wanted != disk_format:
            wrong.append("%s wants %s" % (store, wanted))
    if not wrong:
        return None
    return ("copy-image would store image %s as %s, but store %s "
            "([%s] %s); copy-image does not convert: import the image "
            "again to that store with glance-direct or web-download (the "
            "conversion runs then), or set [%s] "
            "allow_copy_image_format_change = true to copy it as it is"
            % (image_id, disk_format, "; store ".join(wrong), options.GROUP,
               "source_format_rules" if rule else "store_formats",
               options.GROUP))


def output_options(settings: Settings, target: str) -> Sequence[str]:
    """``-o`` creation options for the target format."""
    if target == "vmdk":
        return ["subformat=%s" % settings.vmdk_subformat]
    if target == "vhd":
        return ["subformat=%s" % settings.vhd_subformat]
    if target == "qcow2":
        return ["compat=%s" % settings.qcow2_compat]
    return []
