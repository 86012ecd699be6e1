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

"""Options of glance-ext-cache-manager.

The manager reads nova.conf as is, so nova's own options are declared here
under nova's names, groups, defaults and deprecated aliases; an operator
points the tool at ``/etc/nova/nova.conf`` and both agree on every path and
age. Options that are ours live in ``[cache_manager]``.
"""

import socket

from oslo_config import cfg

# --- nova's options (nova/conf/paths.py, compute.py, imagecache.py) -------

# nova's own default for state_path is the directory of its Python package,
# which is meaningless outside nova's venv; every distribution sets it to
# /var/lib/nova, so that is the default here.
nova_default_opts = [
    cfg.StrOpt('state_path', default='/var/lib/nova',
               help="nova's top-level state directory (nova's "
                    "[DEFAULT] state_path)."),
    cfg.StrOpt('instances_path', default='$state_path/instances',
               help="Where nova stores instances (nova's [DEFAULT] "
                    "instances_path); the cache is "
                    "<instances_path>/<[image_cache] subdirectory_name>."),
    cfg.StrOpt('preallocate_images', default='none',
               choices=[('none', 'No storage provisioning is done up front'),
                        ('space', 'Storage is fully allocated at instance '
                                  'start')],
               help="nova's [DEFAULT] preallocate_images. With 'space' the "
                    "manager reports instance disks that are not fully "
                    "allocated."),
    cfg.StrOpt('host', default=socket.gethostname(), sample_default='<current_hostname>',
               help="Name of this compute host as nova registers it in "
                    "<instances_path>/compute_nodes (nova's [DEFAULT] "
                    "host)."),
]

image_cache_group = cfg.OptGroup('image_cache', title='Image Cache Options')

image_cache_opts = [
    cfg.IntOpt('manager_interval', default=2400, min=-1,
               deprecated_name='image_cache_manager_interval',
               deprecated_group='DEFAULT',
               help="Seconds between passes in daemon mode (nova's "
                    "[image_cache] manager_interval). 0 means 60 seconds, "
                    "-1 disables the daemon loop."),
    cfg.StrOpt('subdirectory_name', default='_base',
               deprecated_name='image_cache_subdirectory_name',
               deprecated_group='DEFAULT',
               help='Name of the cache directory relative to '
                    'instances_path.'),
    cfg.BoolOpt('remove_unused_base_images', default=True,
                deprecated_group='DEFAULT',
                help="nova's switch for its own removal. The manager is "
                     "meant to run with it False in nova.conf; when it "
                     "reads True the manager reports only (two removers on "
                     "one cache would race) unless [cache_manager] "
                     "act_when_nova_removes is set."),
    cfg.IntOpt('remove_unused_original_minimum_age_seconds',
               default=24 * 3600, deprecated_group='DEFAULT',
               help='Unused originals, swap and ephemeral bases younger '
                    'than this are kept.'),
    cfg.IntOpt('remove_unused_resized_minimum_age_seconds',
               default=3600, deprecated_group='libvirt',
               help='Unused resized bases younger than this are kept.'),
]

# --- ours -----------------------------------------------------------------

cache_manager_group = cfg.OptGroup(
    'cache_manager', title='glance-ext-cache-manager',
    help="Options of glance-ext-cache-manager that nova does not have.")

cache_manager_opts = [
    cfg.StrOpt('state_dir',
               default='$instances_path/glance-ext-cache-manager',
               help='Directory for the quarantine, the unused-since record '
                    'and the storage id. It must be on the same filesystem '
                    'as the cache so that quarantining is an atomic '
                    'rename.'),
    cfg.StrOpt('age_source', default='mtime',
               choices=[('mtime', "nova-compatible: age is now - mtime; "
                                  "in-use files are touched every pass "
                                  "like nova does"),
                        ('unused_since', 'age is the time since the manager '
                                         'first saw the file unused; '
                                         'touching by other tools does not '
                                         'reset it')],
               help='How the age of a base file is measured.'),
    cfg.IntOpt('recent_touch_guard_seconds', default=600, min=0,
               help='A file modified this recently is not removed in this '
                    'pass, whatever its age by age_source. Nova sets the '
                    "mtime of a base between fetching it and creating a disk "
                    "on it under a second lock; with age_source = "
                    'unused_since this guard is what keeps that window '
                    'closed. It does not reset the unused-since clock.'),
    cfg.IntOpt('quarantine_grace_seconds', default=3 * 24 * 3600, min=0,
               help='Quarantined files are purged this long after they '
                    'were quarantined; until then "restore NAME" puts them '
                    'back.'),
    cfg.IntOpt('leftover_minimum_age_seconds', default=24 * 3600, min=0,
               help='.part and .converted leftovers (and legacy .info '
                    'files whose base is gone) older than this and not '
                    'locked by nova are removed.'),
    cfg.IntOpt('stale_host_seconds', default=0, min=0,
               help='On shared storage nothing is removed while a host in '
                    '<instances_path>/compute_nodes has not written its '
                    'heartbeat for this long (its instances are unknown). '
                    '0 means three times [image_cache] manager_interval.'),
    cfg.ListOpt('decommissioned_hosts', default=[],
                help='Hosts in compute_nodes that are gone for good and '
                     'must not block removal.'),
    cfg.FloatOpt('lock_wait_seconds', default=0.0, min=0.0,
                 help="How long to wait for nova's lock on a base before "
                      "skipping it until the next pass (0: do not wait)."),
    cfg.StrOpt('coordination_url', default=None,
               help='tooz backend URL used to elect the one manager that '
                    'acts on shared storage. Default: the tooz file driver '
                    'in <state_dir>/coordination, i.e. on the shared '
                    'storage itself.'),
    cfg.BoolOpt('act_when_nova_removes', default=False,
                help='Also remove when nova.conf has [image_cache] '
                     'remove_unused_base_images = True.'),
    cfg.BoolOpt('touch_in_use', default=True,
                help='With age_source = mtime, set the mtime of in-use '
                     "bases to now every pass, as nova's own pass does, so "
                     'a base becomes removable only after being unused for '
                     'the minimum age.'),
    cfg.IntOpt('max_backing_chain_depth', default=16, min=1,
               help='Backing chains deeper than this are treated as '
                    'unreadable (everything kept).'),
    cfg.StrOpt('metrics_textfile', default=None,
               help='Write Prometheus metrics to this file after every pass '
                    '(node_exporter textfile collector).'),
    cfg.PortOpt('metrics_port', default=None,
                help='Serve Prometheus metrics over HTTP on this port in '
                     'daemon mode.'),
    cfg.StrOpt('metrics_address', default='127.0.0.1',
               help='Address for metrics_port.'),
    cfg.BoolOpt('glance_lookup', default=False,
                help='Ask Glance which image each original belongs to (for '
                     'reports) and evict bases of images deleted in Glance '
                     'first.'),
    cfg.URIOpt('glance_endpoint', default=None,
               help='Glance API endpoint, e.g. http://glance:9292.'),
    cfg.StrOpt('glance_token', default=None, secret=True,
               help='Token sent to Glance (an admin token, so that every '
                    'image is visible).'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every option the manager reads on ``conf``."""
    # Groups are registered by name: oslo.config would share the module's
    # OptGroup objects (and their overrides) between ConfigOpts instances.
    conf.register_opts(nova_default_opts)
    conf.register_opts(image_cache_opts, group=image_cache_group.name)
    conf.register_opts(cache_manager_opts, group=cache_manager_group.name)


def list_opts() -> list:
    """Entry point for oslo-config-generator."""
    return [('DEFAULT', nova_default_opts),
            (image_cache_group, image_cache_opts),
            (cache_manager_group, cache_manager_opts)]
