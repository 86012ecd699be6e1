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

"""What several layers share, each in one small module.

Helpers that more than one engine (or an engine and a CLI) needs live
here, once: byte sizes for messages (``sizes``), free space in a
directory (``space``), what a child process's exit status means (``exits``), the
one bounded session with a tooz coordination backend (``coordination``,
for the cluster-wide conversion cap and the cache manager's election)
and node names in file names (``names``). Nothing here knows Glance or
any engine.
"""
