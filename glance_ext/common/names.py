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

"""Node names inside file names.

Files that several glance-api nodes may see in one shared directory (the
conversion slots, the recovery lock) carry the name of the node that owns
them (``[glance_ext] host``); the conversion engine and the recovery both
turn that name into a file name here, the same way.
"""

import re


def file_safe(name: str) -> str:
    """``name`` usable as a file name prefix (host names are already)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:128] or "node"
