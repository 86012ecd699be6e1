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

"""Conversion progress: parsing qemu-img's ``-p`` output and rate-limiting
the reports.

qemu-img prints ``    (42.17/100%)\r`` to stdout; the percentage is of
the guest data it has walked, so bytes are derived from the virtual size.
"""

import dataclasses
import re
import time
from typing import Callable, Optional

_PERCENT = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


@dataclasses.dataclass(frozen=True)
class Progress:
    percent: float
    done_bytes: int
    total_bytes: int
    elapsed: float
    phase: str = "converting"


class ProgressParser:
    """Feed chunks of qemu-img stdout; get the last percentage seen."""

    def __init__(self) -> None:
        self._buffer = b""
        self.percent: Optional[float] = None

    def feed(self, chunk: bytes) -> Optional[float]:
        self._buffer = (self._buffer + chunk)[-256:]
        matches = _PERCENT.findall(self._buffer)
        if matches:
            self.percent = min(100.0, float(matches[-1]))
            # Keep only what follows the last complete report.
            end = self._buffer.rfind(b")")
            self._buffer = self._buffer[end + 1:]
        return self.percent


Callback = Callable[[Progress], None]


class Throttle:
    """Calls ``callback`` at most once per ``interval`` (and always for the
    first and the final report), so a fast conversion does not hammer
    Glance's database with task-message updates."""

    def __init__(self, callback: Optional[Callback], interval: float) -> None:
        self.callback = callback
        self.interval = interval
        self._last: Optional[float] = None

    def __call__(self, progress: Progress, final: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if final or self._last is None or now - self._last >= self.interval:
            self._last = now
            self.callback(progress)
