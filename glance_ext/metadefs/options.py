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

"""Options of the metadefs enforcement filter (``[glance_ext_metadefs]``).

The filter runs inside glance-api, so its options live in glance-api.conf;
each can also be given in the paste section of the filter (paste values
win), which is handy when one Glance serves several pipelines.
"""

from typing import List, Tuple

from oslo_config import cfg

GROUP = "glance_ext_metadefs"

enforcement_opts = [
    cfg.IntOpt("refresh_interval", default=60, min=1,
               help="Seconds between two reads of the catalog from this "
                    "Glance's metadefs API. After `glance-manage db "
                    "load_metadefs` the new catalog applies within this "
                    "time, without a restart. Each glance-api worker keeps "
                    "its own copy."),
    cfg.IntOpt("retry_interval", default=10, min=1,
               help="Seconds to wait before trying again after the catalog "
                    "could not be read."),
    cfg.ListOpt("namespaces", default=["GlanceExt::*"],
                help="Shell-style patterns of the metadefs namespaces to "
                     "enforce. The default enforces the glance_ext catalog "
                     "only: Glance's own shipped namespaces contain stale "
                     "enums (e.g. hw_cpu_policy without 'mixed') and "
                     "enforcing them would refuse values nova accepts."),
    cfg.StrOpt("resource_type", default="OS::Glance::Image",
               help="Resource type whose property keys (with the "
                    "association's prefix) are enforced."),
    cfg.ListOpt("advisory_properties", default=["os_distro"],
                help="Image property keys whose catalog values are only "
                     "advice: a value outside the catalog is logged as a "
                     "warning and accepted. os_distro is advisory by "
                     "default because nova reads it as free text and the "
                     "compute hosts' libosinfo may know distributions the "
                     "catalog's osinfo-db does not. Set to an empty value "
                     "to enforce os_distro too."),
    cfg.BoolOpt("fail_closed", default=False,
                help="What to do while no catalog could ever be read "
                     "(metadefs API failing): False (default) lets image "
                     "requests through and logs a warning, because refusing "
                     "them would stop every image create and nova snapshot "
                     "of the cloud over a lookup problem; True answers 503 "
                     "instead, for clouds that must never store an "
                     "unchecked property. Once a catalog was read, the last "
                     "good one is used while refreshes fail."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(enforcement_opts, group=GROUP)


def list_opts() -> List[Tuple[str, list]]:
    return [(GROUP, list(enforcement_opts))]
