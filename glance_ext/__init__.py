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

"""glance_ext: import plugins, metadefs and image lifecycle tools for Glance.

The layout is the architecture (docs/architecture.md): engines that know
nothing of Glance (``inspection``, ``conversion``, ``decompression``,
``guest``, ``injection``, ``metadefs``, ``cache_manager``, ``qemu``), thin
adapters to Glance (``plugins``, ``middleware``), the command-line tools
(``cmd``), what several share (``common``, ``exceptions``, ``shipped``) and
development support (``local_glance``, ``testing``).
"""

__version__ = "0.1.0"
