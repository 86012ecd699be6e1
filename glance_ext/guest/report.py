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

"""The guest inspection report: what the disk holds and how it fares.

The worker process produces it as a plain dict (it crosses a process
boundary as JSON); ``GuestReport`` wraps that dict for callers, for the
``glance-ext inspect`` text output and for the inject plugin.
"""

import copy
from typing import Any, Dict, Iterable, List, Optional

from glance_ext.guest import eol as eol_mod
from glance_ext.guest.packages import Kernel
from glance_ext.guest.packages import Package

from glance_ext.guest.checks import Check, CheckStatus, Severity

STATUS_ORDER = tuple(s.value for s in CheckStatus)
SEVERITY_ORDER = tuple(s.value for s in Severity)


class GuestReport:
    """Read-only view over the engine's report dict."""

    def __init__(self, data: Dict[str, Any]) -> None:
        self._data = data

    def to_dict(self) -> Dict[str, Any]:
        return copy.deepcopy(self._data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    @property
    def ok(self) -> bool:
        """True when the engine could inspect the image (not a verdict)."""
        return not self._data.get("error")

    @property
    def tool_unavailable(self) -> bool:
        """The host could not run the inspection (a tool is missing or
        unusable): an environment fault, not a property of the image."""
        return self._data.get("error_kind") == "tool_unavailable"

    @property
    def os(self) -> Dict[str, Any]:
        return self._data.get("os") or {}

    @property
    def checks(self) -> List[Check]:
        return [Check.from_dict(c) for c in self._data.get("checks") or ()]

    @property
    def inventory(self) -> Optional[Dict[str, Any]]:
        """The ``packages`` section (None when the inventory was off)."""
        return self._data.get("packages")

    @property
    def packages(self) -> List[Package]:
        inv = self.inventory or {}
        return [Package.from_dict(p) for p in inv.get("items") or []]

    @property
    def kernels(self) -> List[Kernel]:
        inv = self.inventory or {}
        return [Kernel(**k) for k in inv.get("kernels") or []]

    @property
    def eol(self) -> Optional[eol_mod.EolInfo]:
        data = self._data.get("eol")
        return eol_mod.EolInfo.from_dict(data) if data else None

    def check(self, check_id: str) -> Optional[Check]:
        return next((c for c in self.checks if c.id == check_id), None)

    def failed_checks(self, severities: Optional[Iterable[str]] = None
                      ) -> List[Check]:
        """The checks that failed, of ``severities`` (all when None)."""
        wanted = None if severities is None else {
            Severity(s) for s in severities}
        return [c for c in self.checks if c.failed and
                (wanted is None or c.severity in wanted)]

    def format_text(self) -> str:
        d = self._data
        osd = self.os

        def row(label: str, value: Any) -> str:
            return "%-18s %s" % (label + ":", "-" if value in (None, "")
                                 else value)

        lines = [row("image", d.get("path")),
                 row("disk format", d.get("disk_format")),
                 row("virtual size", d.get("virtual_size"))]
        if d.get("error"):
            lines.append(row("error", d["error"]))
        lines += [row("os type", osd.get("os_type")),
                  row("distribution", osd.get("distro")),
                  row("version", osd.get("version")),
                  row("product", osd.get("product_name")),
                  row("osinfo short-id", osd.get("osinfo_id")),
                  row("architecture", d.get("architecture")),
                  row("firmware", d.get("firmware")),
                  row("partition table", d.get("partition_table")),
                  row("root filesystem", _root_text(d.get("root"))),
                  row("root is last", _yesno(d.get("root_is_last"))),
                  row("root can grow", _yesno(d.get("root_can_grow"))),
                  row("packages", _packages_text(self.inventory)),
                  row("kernels", ", ".join(k.version for k in self.kernels)
                      if self.kernels else None),
                  row("end of life", _eol_text(self.eol)),
                  row("bytes read", "%s guest, %s from the image file" % (
                      d.get("bytes_read"), d.get("image_bytes_read"))),
                  row("elapsed", "%.3fs (worker %.3fs)" % (
                      d.get("elapsed") or 0.0,
                      d.get("worker_elapsed") or 0.0))]
        parts = d.get("partitions") or []
        if parts:
            lines.append("partitions:")
            for p in parts:
                what = ("LV %s" % p["lv"]) if p.get("lv") else p["type_name"]
                lines.append(
                    "  %-3s start=%-12d size=%-12d %-22s fs=%-11s %s%s" % (
                        p["number"], p["start"], p["size"], what[:22],
                        p.get("fs_type") or "-",
                        ("mounted at %s" % p["mountpoint"])
                        if p.get("mountpoint") else "",
                        (" (%s)" % p["error"]) if p.get("error") else ""))
        if self.checks:
            lines.append("image guide checks:")
            for c in sorted(self.checks, key=lambda c: (
                    STATUS_ORDER.index(c.status.value),
                    SEVERITY_ORDER.index(c.severity.value), c.id)):
                lines.append("  %-7s %-17s %-8s %s" % (
                    c.status.value.upper(), c.id, c.severity.value,
                    "; ".join(c.evidence)[:160]))
        for note in d.get("notes") or []:
            lines.append("note: %s" % note)
        return "\n".join(lines)


def _packages_text(inv: Optional[Dict[str, Any]]) -> Optional[str]:
    if inv is None:
        return "not listed (inventory off)"
    if inv.get("error"):
        return "unknown: %s" % inv["error"]
    if not inv.get("format"):
        return "none found"
    return "%d (%s, %s)" % (inv.get("count", 0), inv["format"],
                            inv.get("database"))


def _eol_text(info: Optional[eol_mod.EolInfo]) -> Optional[str]:
    if info is None:
        return None
    if info.lookup is not eol_mod.Lookup.FOUND:
        return "unknown: %s" % info.message
    return eol_mod.evaluate(info, 0).text


def _root_text(root: Optional[Dict[str, Any]]) -> Optional[str]:
    if not root:
        return None
    where = "partition %s" % root["partition"]
    if root.get("lv"):
        where += " LV %s" % root["lv"]
    return "%s, %s, UUID %s" % (where, root["fs_type"], root["fs_uuid"])


def _yesno(value: Optional[bool]) -> Optional[str]:
    return None if value is None else ("yes" if value else "no")
