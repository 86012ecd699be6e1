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

"""Revert interrupted imports when glance-api starts.

Glance loads import plugins only when an import runs, so nothing of
glance_ext runs when glance-api starts; images whose import a stop or
crash interrupted would stay ``importing`` until someone imports again on
the host. paste.deploy, however, builds the pipeline in every worker as it
boots, and this filter's factory uses that moment to run
``plugins.recovery`` in a background thread (a slow database must not
hold up the worker). Requests pass through untouched::

    [filter:glance_ext_recovery]
    paste.filter_factory = glance_ext.middleware.startup_recovery:filter_factory

and add ``glance_ext_recovery`` to every pipeline (``glance-ext
paste-config`` does both).
"""

import threading
from typing import Any, Callable, Mapping

from oslo_config import cfg


def start_recovery() -> threading.Thread:
    """Run the recovery once, in the background, with Glance's CONF."""
    from glance_ext.plugins import recovery

    thread = threading.Thread(
        target=recovery.recover_on_this_host, args=(cfg.CONF, "at start"),
        name="glance-ext-recovery", daemon=True)
    thread.start()
    return thread


def filter_factory(global_conf: Mapping[str, str],
                   **local_conf: str) -> Callable[[Any], Any]:
    """Paste entry point (``paste.filter_factory``)."""
    start_recovery()
    return lambda app: app
