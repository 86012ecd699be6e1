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

"""Byte counts for the messages operators and users read.

One formatter for every message, task progress and report (there used to
be three, each with its own units).
"""


def human(nbytes: float) -> str:
    """1536 -> '1.5 KiB'; below 1 KiB, '512 bytes'."""
    value = float(nbytes)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            if unit == "bytes":
                return "%d bytes" % nbytes
            return "%.1f %s" % (value, unit)
        value /= 1024
    return "%d bytes" % nbytes
