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

"""The inject plugin's engine: which properties an imported image gets.

``discovered`` maps a guest inspection report to nova properties,
``rules`` loads and evaluates the operator's rules (``templating`` renders
their values), ``catalog_check`` checks every value against the metadefs
catalog, ``plan`` merges all of it with what the user set, and
``virtio`` looks for Windows virtio drivers. The plugin
(``glance_ext.plugins.inject``) only wires these to Glance.
"""
