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

"""End of life from osinfo-db: the lookup and the verdict with a margin.

A small osinfo-db written here fixes the dates the verdicts are checked
against; the system's osinfo-db (Debian package osinfo-db) is checked
for a date it has carried for years (CentOS 7: 2024-06-30).
"""

import datetime
import os

import pytest

from glance_ext import testing
from glance_ext.guest import eol

XML = """<?xml version="1.0" encoding="UTF-8"?>
<libosinfo version="0.0.1">
  <os id="http://example.org/%(id)s">
    <short-id>%(id)s</short-id>
    <short-id>%(id)salias</short-id>
    <name>Test %(id)s</name>
    <release-date>2020-01-01</release-date>
    %(eol)s
  </os>
</libosinfo>
"""


@pytest.fixture
def osinfo(tmp_path):
    base = tmp_path / "osinfo" / "os" / "example.org"
    base.mkdir(parents=True)
    for short, date in (("oldos1", "2021-06-30"), ("newos2", "2030-01-31"),
                        ("soonos3", "2026-03-01"), ("nodate4", None)):
        (base / (short + ".xml")).write_text(XML % {
            "id": short, "eol": "<eol-date>%s</eol-date>" % date
            if date else ""})
    (base / "broken.xml").write_text("<libosinfo><os>")
    return str(tmp_path / "osinfo")


TODAY = datetime.date(2026, 1, 15)


@pytest.mark.parametrize("short,state,days", [
    ("oldos1", eol.State.ENDED, -1660),
    ("oldos1alias", eol.State.ENDED, -1660),
    ("soonos3", eol.State.ENDING, 45),
    ("newos2", eol.State.SUPPORTED, 1477),
    ("nodate4", eol.State.UNKNOWN, None),
    ("nosuch9", eol.State.UNKNOWN, None),
    (None, eol.State.UNKNOWN, None),
])
def test_verdicts(osinfo, short, state, days):
    info = eol.lookup(short, osinfo)
    verdict = eol.evaluate(info, warn_days=90, today=TODAY)
    assert (verdict.state, verdict.days_left) == (state, days)
    assert eol.EolInfo.from_dict(info.to_dict()) == info


def test_texts_carry_the_date(osinfo):
    ended = eol.evaluate(eol.lookup("oldos1", osinfo), 90, TODAY)
    assert ended.text == ("oldos1 reached its end of life on 2021-06-30 "
                          "(1660 days ago, per osinfo-db)")
    ending = eol.evaluate(eol.lookup("soonos3", osinfo), 90, TODAY)
    assert "2026-03-01, in 45 days" in ending.text
    # No margin: still supported.
    assert eol.evaluate(eol.lookup("soonos3", osinfo), 30, TODAY).state \
        is eol.State.SUPPORTED
    assert eol.lookup("nosuch9", osinfo).lookup is eol.Lookup.UNKNOWN_OS
    assert eol.lookup("nodate4", osinfo).lookup is eol.Lookup.NO_DATE


def test_missing_database_names_the_package(tmp_path):
    info = eol.lookup("centos7", str(tmp_path / "none"))
    assert info.lookup is eol.Lookup.DB_MISSING
    assert "osinfo-db is not installed" in info.message
    assert "apt-get install osinfo-db" in info.message
    assert eol.evaluate(info, 90).state is eol.State.UNKNOWN


def test_system_osinfo_db():
    if not os.path.isdir("/usr/share/osinfo/os"):
        testing.needs("osinfo-db is not installed "
                      "(tools/install-system-deps.sh --test)")
    info = eol.lookup("centos7")
    assert info.lookup is eol.Lookup.FOUND
    assert info.eol_date == datetime.date(2024, 6, 30)
    assert info.source.endswith("centos-7.0.xml")
