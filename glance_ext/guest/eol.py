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

"""End of life of the guest's OS, from osinfo-db's ``<eol-date>``.

osinfo-db (libosinfo's database, the one nova resolves ``os_distro``
against) gives each OS version a release date and, once it is known, an
end-of-life date. It is read at run time from the system
(``[glance_ext_guest] osinfo_db_dir``) rather than shipped in the wheel:
EOL dates are added to osinfo-db as releases age, and a distribution's
osinfo-db update then reaches the check without a glance_ext release. A
missing osinfo-db is an environment fault, reported with the package to
install (``DB_MISSING``), never as a property of the image.

The lookup runs in the calling process, not the inspection worker: it
reads trusted system files only, and only the short-id the engine found.
"""

import dataclasses
import datetime
import enum
import functools
import os
import xml.etree.ElementTree as ElementTree
from typing import Any, Dict, Optional, Tuple

DEFAULT_DIR = "/usr/share/osinfo"
PACKAGE_HINT = ("install osinfo-db (Debian/Ubuntu: apt-get install "
                "osinfo-db; Fedora/EL: dnf install osinfo-db) or set "
                "[glance_ext_guest] osinfo_db_dir")


class Lookup(str, enum.Enum):
    """What osinfo-db said about the guest's short-id."""

    FOUND = "found"              # an eol-date is known
    NO_DATE = "no-date"          # the OS is known, no end of life yet
    UNKNOWN_OS = "unknown-os"    # osinfo-db has no such short-id
    NO_ID = "no-id"              # the engine found no short-id
    DB_MISSING = "db-missing"    # no osinfo-db on this machine


class State(str, enum.Enum):
    """The verdict for one date, against today and the warning margin."""

    SUPPORTED = "supported"
    ENDING = "ending"            # within the warning margin
    ENDED = "ended"
    UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class EolInfo:
    lookup: Lookup
    osinfo_id: Optional[str] = None
    eol_date: Optional[datetime.date] = None
    release_date: Optional[datetime.date] = None
    source: Optional[str] = None           # the osinfo-db XML file
    message: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return {"lookup": self.lookup.value, "osinfo_id": self.osinfo_id,
                "eol_date": self.eol_date.isoformat() if self.eol_date
                else None,
                "release_date": self.release_date.isoformat()
                if self.release_date else None,
                "source": self.source, "message": self.message}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "EolInfo":
        def day(text):
            return datetime.date.fromisoformat(text) if text else None
        return cls(Lookup(data["lookup"]), data.get("osinfo_id"),
                   day(data.get("eol_date")), day(data.get("release_date")),
                   data.get("source"), data.get("message") or "")


@dataclasses.dataclass(frozen=True)
class Verdict:
    state: State
    days_left: Optional[int]
    text: str


def _date(text: Optional[str]) -> Optional[datetime.date]:
    try:
        return datetime.date.fromisoformat((text or "").strip()) \
            if text else None
    except ValueError:
        return None


@functools.lru_cache(maxsize=4)
def _index(osinfo_dir: str, stamp: float
           ) -> Dict[str, Tuple[str, Optional[datetime.date],
                                Optional[datetime.date]]]:
    """short-id -> (file, eol-date, release-date), for one database.

    Keyed by the directory's mtime so that a package update is seen by a
    long-running Glance without a restart.
    """
    index = {}
    base = os.path.join(osinfo_dir, "os")
    for dirpath, _dirs, files in os.walk(base):
        for name in files:
            if not name.endswith(".xml"):
                continue
            path = os.path.join(dirpath, name)
            try:
                root = ElementTree.parse(path).getroot()
            except (OSError, ElementTree.ParseError):
                continue
            for os_el in root.iter("os"):
                eol = _date(os_el.findtext("eol-date"))
                released = _date(os_el.findtext("release-date"))
                for short in os_el.findall("short-id"):
                    if short.text:
                        index.setdefault(short.text.strip(),
                                         (path, eol, released))
    return index


def lookup(osinfo_id: Optional[str],
           osinfo_dir: str = DEFAULT_DIR) -> EolInfo:
    """osinfo-db's end-of-life date for one libosinfo short-id."""
    base = os.path.join(osinfo_dir, "os")
    if not os.path.isdir(base):
        return EolInfo(Lookup.DB_MISSING, osinfo_id, message=(
            "osinfo-db is not installed (no %s): the end of life of the "
            "guest's OS cannot be told; %s" % (base, PACKAGE_HINT)))
    if not osinfo_id:
        return EolInfo(Lookup.NO_ID, message="the engine found no libosinfo "
                       "short-id for this guest")
    found = _index(osinfo_dir, os.stat(base).st_mtime).get(osinfo_id)
    if found is None:
        return EolInfo(Lookup.UNKNOWN_OS, osinfo_id, message=(
            "osinfo-db in %s has no %s (a newer osinfo-db may know it)"
            % (osinfo_dir, osinfo_id)))
    path, eol_date, released = found
    if eol_date is None:
        return EolInfo(Lookup.NO_DATE, osinfo_id, None, released, path,
                       "osinfo-db gives %s no end-of-life date" % osinfo_id)
    return EolInfo(Lookup.FOUND, osinfo_id, eol_date, released, path,
                   "osinfo-db: %s reaches its end of life on %s"
                   % (osinfo_id, eol_date.isoformat()))


def evaluate(info: EolInfo, warn_days: int,
             today: Optional[datetime.date] = None) -> Verdict:
    """Ended, ending within ``warn_days``, supported, or unknown."""
    today = today or datetime.date.today()
    if info.lookup is not Lookup.FOUND or info.eol_date is None:
        return Verdict(State.UNKNOWN, None, info.message)
    left = (info.eol_date - today).days
    if left < 0:
        return Verdict(State.ENDED, left, "%s reached its end of life on %s "
                       "(%d days ago, per osinfo-db)"
                       % (info.osinfo_id, info.eol_date.isoformat(), -left))
    if left <= warn_days:
        return Verdict(State.ENDING, left, "%s reaches its end of life on "
                       "%s, in %d days (per osinfo-db)"
                       % (info.osinfo_id, info.eol_date.isoformat(), left))
    return Verdict(State.SUPPORTED, left, "%s is supported until %s (per "
                   "osinfo-db)" % (info.osinfo_id, info.eol_date.isoformat()))
