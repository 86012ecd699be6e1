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

"""Options of the guest inspection engine: one group, ``[glance_ext_guest]``.

Read from glance-image-import.conf when the inject plugin runs in Glance,
and by ``glance-ext inspect`` through its ``--config-file``.
"""

from typing import Any, List, Tuple

from oslo_config import cfg

GROUP = "glance_ext_guest"

guest_opts = [
    cfg.IntOpt("read_budget_mb", default=16, min=1, max=1024,
               help="Most MiB of guest data the engine reads from one image "
                    "(in 64 KiB blocks), whatever its size. The test images "
                    "need 0.5-2 MiB; a crafted filesystem that needs more "
                    "is reported as over budget instead of read."),
    cfg.IntOpt("worker_cpu_seconds", default=20, min=1,
               help="CPU seconds the inspection worker process (and the "
                    "qemu-nbd it runs) may use."),
    cfg.IntOpt("worker_memory_mb", default=1024, min=256,
               help="Address-space limit (MiB) of the inspection worker "
                    "and of qemu-nbd."),
    cfg.IntOpt("worker_timeout_seconds", default=60, min=1,
               help="Wall-clock limit of one inspection; the worker and "
                    "qemu-nbd are killed after it."),
    cfg.StrOpt("qemu_nbd", default="qemu-nbd",
               help="The qemu-nbd binary (qemu-utils) used to read qcow2, "
                    "vmdk, vhd, vhdx and vdi images."),
    cfg.IntOpt("max_file_kb", default=256, min=4,
               help="Most KiB read from any one guest file."),
    cfg.IntOpt("max_dir_entries", default=4096, min=16,
               help="Most entries read from any one guest directory."),
    cfg.BoolOpt("inventory", default=True,
                help="List the installed packages (dpkg, rpm, apk, Windows "
                     "Uninstall keys) and kernels of the guest, for the "
                     "SBOM and the glance_ext_inject_packages summary."),
    cfg.IntOpt("inventory_budget_mb", default=128, min=1, max=4096,
               help="Most MiB read for the package databases, on top of "
                    "read_budget_mb. A Debian cloud image's dpkg status is "
                    "about 1 MiB, an EL9 rpmdb.sqlite 10-30 MiB. A larger "
                    "database is refused (named in the report), never read "
                    "in part."),
    cfg.StrOpt("osinfo_db_dir", default="/usr/share/osinfo",
               help="The osinfo-db database (Debian/Ubuntu/Fedora package "
                    "osinfo-db) whose eol-date of each OS version the os_eol "
                    "check reports. Read at run time so that a distribution "
                    "update of osinfo-db brings new end-of-life dates "
                    "without a glance_ext release."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(guest_opts, group=GROUP)


def standalone_conf(**overrides: Any) -> cfg.ConfigOpts:
    """The guest options outside Glance (``glance-ext inspect``, tests):
    defaults, with ``overrides`` of ``[glance_ext_guest]`` applied."""
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(args=[], default_config_files=[], default_config_dirs=[])
    for key, value in overrides.items():
        conf.set_override(key, value, group=GROUP)
    return conf


def list_opts() -> List[Tuple[str, list]]:
    return [(GROUP, guest_opts)]
