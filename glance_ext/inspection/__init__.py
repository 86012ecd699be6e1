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

"""The inspection engine: is a disk image what it claims, and safe to open?

Behind the ``glance_ext_validate`` plugin and ``glance-ext inspect``:
format detection (oslo.utils' format inspectors and our own structure
checks), what qemu's probe would read, a ``qemu-img info`` cross-check
under limits, the operator's policy, and one structured ``Report``. It
knows nothing of Glance.
"""
