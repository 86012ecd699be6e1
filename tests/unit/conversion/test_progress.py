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

"""Parsing qemu-img -p output and rate-limiting the reports."""

from glance_ext.conversion import progress


def test_parser_handles_split_chunks():
    p = progress.ProgressParser()
    assert p.feed(b"    (0.00/100%)\r    (12.") == 0.0
    assert p.feed(b"50/100%)\r") == 12.5
    assert p.feed(b"    (100.00/100%)\r\n") == 100.0


def test_throttle_limits_rate_but_keeps_first_and_final():
    seen = []
    t = progress.Throttle(seen.append, interval=3600)
    for pct in (1, 2, 3):
        t(progress.Progress(pct, pct, 100, 0.0))
    t(progress.Progress(100, 100, 100, 0.0), final=True)
    assert [p.percent for p in seen] == [1, 100]
