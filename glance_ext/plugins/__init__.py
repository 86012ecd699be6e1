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

"""Taskflow import plugins for Glance (entry points in
``glance.image_import.plugins``). Each is thin: it calls an engine and uses
``plugins.base`` for what every plugin must do on failure, and the import
journal (``plugins.journal``, ``plugins.recovery``) for what a crash must
not leave behind.

``ORDER`` is the one place the plugins' order is declared: decompression
makes the file validation judges; conversion needs a validated file;
injection reports on the final one.
"""

from typing import List, Sequence

ORDER = ("glance_ext_decompress", "glance_ext_validate",
         "glance_ext_convert", "glance_ext_inject")
# Glance's own plugins that hand the staged data to qemu-img: validation
# must come before them too.
GLANCE_QEMU_PLUGINS = ("image_conversion",)


def listed_too_early(name: str, enabled: Sequence[str]) -> List[str]:
    """Plugins in ``enabled`` (``image_import_plugins``) listed before
    ``name`` that must run after it: ours by ``ORDER``, and for validation
    Glance's qemu-img users."""
    if name not in enabled or name not in ORDER:
        return []
    later = set(ORDER[ORDER.index(name) + 1:])
    if name == "glance_ext_validate":
        later |= set(GLANCE_QEMU_PLUGINS)
    return [p for p in enabled[:list(enabled).index(name)] if p in later]
