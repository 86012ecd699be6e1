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

"""Options of the ``glance_ext_convert`` plugin and ``glance-ext convert``.

One group, ``[glance_ext_convert]``, read from glance-image-import.conf by
the plugin and from ``--config-file`` by the CLI, so an offline run uses the
operator's real settings.
"""

from typing import List, Tuple

from oslo_config import cfg

GROUP = "glance_ext_convert"

# Output formats Glance accepts as disk_format and qemu-img can write,
# described for the sample config (oslo.config choices).
FORMAT_CHOICES = [
    ("raw", "plain bytes: what Ceph RBD and most block stores want"),
    ("qcow2", "qemu's copy-on-write format: compact on file stores"),
    ("vmdk", "VMware's format (variant: vmdk_subformat)"),
    ("vhd", "Hyper-V's VHD (qemu's vpc driver; variant: vhd_subformat)"),
    ("vhdx", "Hyper-V's VHDX"),
    ("vdi", "VirtualBox's format")]
OUTPUT_FORMATS = tuple(name for name, _ in FORMAT_CHOICES)
KEEP = "keep"

convert_opts = [
    cfg.DictOpt("store_formats", default={},
                help="Target disk_format per store id, e.g. "
                     "'ceph:raw,fs:qcow2'. Stores not listed use "
                     "default_format. Formats: %s." % ", ".join(OUTPUT_FORMATS)),
    cfg.StrOpt("default_format", default="raw",
               choices=FORMAT_CHOICES,
               help="Target disk_format for stores not in store_formats (and "
                    "for single-store deployments without store ids)."),
    cfg.DictOpt("source_format_rules", default={"iso": KEEP},
                help="Rules by detected source format that win over the "
                     "store map: 'keep' stores the image as it is, a format "
                     "name forces that output, e.g. 'iso:keep,vdi:qcow2'."),
    cfg.ListOpt("store_precedence", default=[],
                help="When the stores of one import want different formats, "
                     "use the format of the first store in this list that is "
                     "among the import's stores. Empty: such an import fails "
                     "with an error naming the stores and their formats."),
    cfg.StrOpt("vmdk_subformat", default="streamOptimized",
               choices=[("streamOptimized", "compressed, written in one "
                                            "pass; what VMware imports"),
                        ("monolithicSparse", "sparse, uncompressed, one "
                                             "file")],
               help="VMDK variant written when converting to vmdk (only "
                    "single-file variants: the others reference extent "
                    "files)."),
    cfg.StrOpt("vhd_subformat", default="dynamic",
               choices=[("dynamic", "grows as data is written"),
                        ("fixed", "fully allocated, the footer at the end "
                                  "(what Azure requires)")],
               help="VHD variant written when converting to vhd."),
    cfg.StrOpt("qcow2_compat", default="1.1",
               choices=[("0.10", "qcow2 version 2, for qemu older than 1.1"),
                        ("1.1", "qcow2 version 3 (lazy refcounts, zero "
                                "clusters)")],
               help="qcow2 version written when converting to qcow2 (0.10 "
                    "for very old consumers)."),
    cfg.IntOpt("free_space_margin_percent", default=10, min=0, max=1000,
               help="Extra space, in percent of the size qemu-img measure "
                    "reports, that must be free in the staging directory "
                    "before converting."),
    cfg.IntOpt("free_space_reserve_mb", default=256, min=0,
               help="Space (MiB) that must stay free in the staging "
                    "directory after the conversion, for other imports and "
                    "the host."),
    cfg.IntOpt("coroutines", default=8, min=1, max=16,
               help="qemu-img convert -m: parallel coroutines."),
    cfg.BoolOpt("out_of_order_writes", default=True,
                help="qemu-img convert -W: allow out-of-order writes (faster "
                     "on every format; the output is only read once it is "
                     "complete)."),
    cfg.StrOpt("cache_mode", default="auto",
               choices=[("auto", "'none' when the staging filesystem "
                                 "supports O_DIRECT and the output's data "
                                 "reaches direct_io_threshold_mb, else "
                                 "'unsafe'"),
                        ("none", "O_DIRECT; keeps the page cache clean"),
                        ("writeback", "page cache plus a final flush"),
                        ("unsafe", "page cache, no flush: the output is a "
                                   "temporary file")],
               help="qemu-img convert -t for the output file."),
    cfg.IntOpt("direct_io_threshold_mb", default=0, min=0,
               help="With cache_mode=auto, outputs whose data is at least "
                    "this large are written with O_DIRECT so they do not "
                    "evict the host's page cache; smaller ones go through "
                    "the cache, from where the store upload right after "
                    "reads them (an O_DIRECT output has to be read back "
                    "from disk). 0 means a quarter of the host's available "
                    "memory when the conversion starts."),
    cfg.IntOpt("rate_limit_mb", default=0, min=0,
               help="qemu-img convert -r: most MiB per second one "
                    "conversion may read; 0 means no limit. Use it when the "
                    "staging disk is shared with a store or with instances."),
    cfg.IntOpt("sparse_size_kb", default=4, min=0,
               help="qemu-img convert -S: zeroed runs of at least this many "
                    "KiB are left unallocated (0 writes every byte)."),
    cfg.IntOpt("split_workers", default=0, min=0, max=16,
               help="qemu-img processes that convert one image whose data "
                    "is stored compressed (streamOptimized VMDK, "
                    "compressed qcow2) at once, each a range holding an "
                    "equal share of the data: qemu-img convert inflates in "
                    "one thread, so one process uses one core. Used for "
                    "raw and qcow2 outputs; qcow2 needs qemu-nbd. 0 means "
                    "one per CPU of the host, at most 4; 1 turns it off. "
                    "Each process is niced and bounded like a single "
                    "conversion, and together they count as one "
                    "conversion against max_concurrent."),
    cfg.IntOpt("split_min_data_mb", default=512, min=1,
               help="Split only sources with at least this much compressed "
                    "data (qemu-img map); below it the extra processes cost "
                    "more than they save."),
    cfg.StrOpt("qemu_nbd", default="qemu-nbd",
               help="qemu-nbd binary, which owns a qcow2 output written by "
                    "split_workers processes."),
    cfg.IntOpt("timeout_base_seconds", default=120, min=1,
               help="Wall-clock limit of one conversion: this base plus "
                    "timeout_seconds_per_gb per GiB of virtual size; "
                    "qemu-img is killed after it."),
    cfg.IntOpt("timeout_seconds_per_gb", default=60, min=0,
               help="Wall-clock seconds allowed per GiB of virtual size."),
    cfg.IntOpt("address_space_mb", default=2048, min=256,
               help="Address-space limit (MiB) of qemu-img convert."),
    cfg.IntOpt("nice", default=10, min=0, max=19,
               help="CPU niceness of qemu-img convert (0 keeps the API "
                    "worker's priority)."),
    cfg.StrOpt("cpu_policy", default="normal",
               choices=[("normal", "the kernel's normal policy, lowered "
                                   "by nice"),
                        ("idle", "SCHED_IDLE: CPU only when no normal "
                                 "process wants it")],
               help="Scheduling policy of the conversion's processes "
                    "(qemu-img, and nbdcopy and qemu-nbd on the streaming "
                    "path). A niced process still takes about a tenth of "
                    "a CPU from a busy neighbour; 'idle' gives the store "
                    "upload and the API workers every cycle they want "
                    "first, and the conversion takes what is left. On a "
                    "host whose CPUs are busy with other work an 'idle' "
                    "conversion can wait a long time: it is still ended "
                    "by the timeout (timeout_base_seconds, "
                    "timeout_seconds_per_gb). Unprivileged processes may "
                    "enter SCHED_IDLE on Linux; if the kernel refuses, "
                    "the conversion runs at 'normal' with a warning."),
    cfg.StrOpt("ionice_class", default="best-effort",
               choices=[("none", "no ionice: the worker's I/O class"),
                        ("best-effort", "ionice -c 2 with ionice_level"),
                        ("idle", "ionice -c 3: I/O only when the disk is "
                                 "otherwise idle")],
               help="IO scheduling class of qemu-img convert. 'idle' can "
                    "starve a conversion forever on a busy disk; "
                    "'best-effort' with level 7 is the safe low priority. "
                    "Only I/O schedulers with priorities (BFQ) honour it; "
                    "with mq-deadline or none (common for virtio and NVMe "
                    "disks) use rate_limit_mb to protect the disk."),
    cfg.IntOpt("ionice_level", default=7, min=0, max=7,
               help="IO priority level within the best-effort class."),
    cfg.IntOpt("max_concurrent", default=2, min=1,
               help="Conversions that may run at once on this host, shared "
                    "by every Glance worker process (file-lock slots in "
                    "lock_dir)."),
    cfg.StrOpt("lock_dir", default="",
               help="Directory of the conversion slot lock files. Empty: "
                    "'glance-ext-convert-slots' next to the staging "
                    "directory. The files are named after the node "
                    "([glance_ext] host), so a directory shared by several "
                    "nodes still limits each node on its own; for a limit "
                    "across nodes use coordination_url."),
    cfg.StrOpt("coordination_url", default="", secret=True,
               help="tooz backend URL of a cluster-wide cap on concurrent "
                    "conversions, on top of max_concurrent per host: "
                    "etcd3+http://HOST:2379 (needs the etcd3gw package) or "
                    "redis://HOST:6379 (needs redis), or any tooz backend "
                    "whose locks span hosts. Every glance-api node must "
                    "use the same URL and cluster_max_concurrent. tooz "
                    "options go in the query string; lock_timeout (30 s) "
                    "is how long the slot of a node that died stays taken. "
                    "Empty: no cluster-wide cap."),
    cfg.IntOpt("cluster_max_concurrent", default=4, min=1,
               help="Conversions that may run at once across every node "
                    "using coordination_url (for example to protect a "
                    "shared Ceph or NFS). Ignored without "
                    "coordination_url."),
    cfg.StrOpt("coordination_unreachable", default="fail",
               choices=[("fail", "the import fails with a message naming "
                                 "the backend (an environment fault, never "
                                 "the image's); the shared storage stays "
                                 "protected"),
                        ("host_limits", "the conversion goes on under "
                                        "max_concurrent only, with a "
                                        "warning in the log")],
               help="What a conversion does when coordination_url cannot "
                    "be reached (refused, unreachable, driver missing). A "
                    "conversion already running when the backend goes "
                    "away is not stopped either way."),
    cfg.IntOpt("slot_wait_seconds", default=1800, min=0,
               help="How long an import waits for a conversion slot (on "
                    "this host, then in the cluster) before failing with a "
                    "message saying the host or the cloud is busy."),
    cfg.FloatOpt("progress_interval_seconds", default=5.0, min=0.2,
                 help="How often the import task's message is updated with "
                      "the conversion progress. Each update also keeps "
                      "Glance's 60-minute import lock fresh."),
    cfg.BoolOpt("compare", default=False,
                help="Run 'qemu-img compare' of source and output after "
                     "converting. Reads both images in full."),
    cfg.BoolOpt("record_source_sha512", default=False,
                help="Record the sha512 of the data as staged (before "
                     "conversion) in glance_ext_convert_source_sha512. "
                     "Reads the source once more."),
    cfg.StrOpt("qemu_img", default="qemu-img", help="qemu-img binary."),
    cfg.BoolOpt("stream_raw", default=True,
                help="Stream raw outputs into the store upload instead of "
                     "writing them to staging first: qemu-nbd serves the "
                     "source, nbdcopy reads it in order into a FIFO that "
                     "Glance's store upload reads, so the conversion runs "
                     "under the upload and no raw copy is written to "
                     "staging. Used for imports to one store whose target "
                     "is raw when glance_ext_convert is the last import "
                     "plugin and compare is off; otherwise (and when this "
                     "is false) the output is written to staging as a file. "
                     "glance_ext_convert_path on the image says which."),
    cfg.IntOpt("stream_open_timeout_seconds", default=60, min=1,
               help="How long a streaming conversion waits for Glance's "
                    "store upload to open the stream. A stream nobody "
                    "reads ends after it and leaves nothing behind."),
    cfg.StrOpt("nbdcopy", default="nbdcopy",
               help="nbdcopy binary (Debian/Ubuntu: libnbd-bin) that "
                    "streams raw outputs; without it raw outputs are "
                    "written to staging as files."),
    cfg.BoolOpt("allow_copy_image_format_change", default=False,
                help="copy-image runs no import plugin, so it copies an "
                     "image as it is. False: the glance_ext_copy_image "
                     "paste filter refuses (409) a copy-image to a store "
                     "whose target format (store_formats, default_format) "
                     "differs from the image's disk_format. True: allow "
                     "such copies; the store then holds the image in its "
                     "current format."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(convert_opts, group=GROUP)


def list_opts() -> List[Tuple[str, list]]:
    return [(GROUP, convert_opts)]
