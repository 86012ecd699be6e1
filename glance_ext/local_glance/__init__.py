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

"""A real, local glance-api for the demo and the functional tests.

``glance-ext local-glance up|down|status|restart`` writes a complete Glance
configuration, starts ``glance.wsgi.api:application`` under gunicorn through ``wsgi``
(SQLite transactions that queue instead of failing: ``sqlite_lock``), with
a throwaway PostgreSQL cluster when asked, and a keystone-less token
filter so Glance's real policies apply; ``client`` drives it the way a
user would. A development tool: never part of a production pipeline.
"""
