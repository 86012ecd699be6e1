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

"""Running qemu's tools safely, and the one Glance <-> qemu format map.

``runner`` is the one way qemu-img runs: under oslo.concurrency's prlimit
and a wall-clock timeout, with its exit judged by
``glance_ext.common.exits``. ``formats`` maps Glance disk_format names to
qemu drivers; ``probe`` reproduces qemu's own format probe without ever
letting qemu open a file an image names. An engine: nothing here knows
Glance.
"""
