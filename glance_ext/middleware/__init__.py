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

"""Paste filters for glance-api: adapters between Glance's WSGI pipeline
and the engines.

``filter_factory`` (``enforcement``) refuses image writes whose properties
the metadefs catalog does not allow; ``startup_recovery`` reverts imports
a stop interrupted when a worker starts; ``paste_config`` edits a
glance-api-paste.ini to hold both. Usable from glance-api-paste.ini as
``paste.filter_factory = glance_ext.middleware:filter_factory``.
"""

from glance_ext.middleware.enforcement import filter_factory

__all__ = ["filter_factory"]
