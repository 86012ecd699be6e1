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

"""The cache manager engine behind ``glance-ext-cache-manager``.

Keeps nova's ``_base`` image cache within nova's aging policy without ever
removing a base file an instance disk still uses: it names every cache
file as nova does (``naming``), finds what every disk's backing chain uses
(``scanner``, ``diskheader``), decides by age (``ages``), removes only
under nova's own locks into a quarantine that can be restored
(``locking``, ``quarantine``), and on shared storage lets one manager act
(``election``, ``sharedstorage``). It knows nova's files, not Glance; the
CLI is ``glance_ext.cmd.cache_manager``.
"""
