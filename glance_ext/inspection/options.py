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

"""Options of the validate plugin and ``glance-ext inspect``: one group.

Glance reads them from glance-image-import.conf (the plugin registers the
group when Glance loads it); ``glance-ext inspect --config-file`` reads the
same file so an operator gets the verdict Glance would give.
"""

from typing import List, Tuple

from oslo_config import cfg

GROUP = "glance_ext_validate"

# Create types that keep all data in the one file. Other VMDK variants name
# extent files on the host, so they can never be allowed.
SINGLE_FILE_VMDK_TYPES = ("monolithicSparse", "streamOptimized")

# oslo.utils' LUKSInspector default luks_iter_limit; see the option's help.
LUKS_MAX_ITERATIONS = 12000000

# Partition-table oddities the MBR check knows (see inspection.structure).
MBR_CHECKS = ("boot_flag", "no_partitions", "pmbr_extra_partitions",
              "pmbr_start_chs", "pmbr_start_lba")

validate_opts = [
    cfg.StrOpt("format_mismatch_policy", default="reject",
               choices=[("reject", "refuse an image whose content is not "
                                   "the claimed disk_format"),
                        ("correct", "set disk_format to the detected format "
                                    "and record the claimed one")],
               help="What to do when the detected format differs from the "
                    "claimed disk_format."),
    cfg.ListOpt("allowed_disk_formats",
                default=["raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso",
                         "gpt"],
                help="Detected formats that may be imported. Known formats: "
                     "raw, qcow2, vmdk, vhd, vhdx, vdi, iso, gpt, luks, qed "
                     "(qed is always refused)."),
    cfg.IntOpt("max_virtual_size_gb", default=16384, min=0,
               help="Largest virtual size in GiB; 0 means no limit. Stops "
                    "tiny files that claim petabytes."),
    cfg.FloatOpt("max_virtual_ratio", default=0.0, min=0.0,
                 help="Largest virtual size / file size ratio; 0 means no "
                      "limit. An empty 1 TiB qcow2 has a ratio of about "
                      "4,000,000; a typical cloud image 5-20."),
    cfg.ListOpt("vmdk_allowed_types", default=list(SINGLE_FILE_VMDK_TYPES),
                help="VMDK createTypes to accept; a subset of %s."
                     % ", ".join(SINGLE_FILE_VMDK_TYPES)),
    cfg.BoolOpt("require_signature", default=False,
                help="Refuse images without all of img_signature, "
                     "img_signature_hash_method, img_signature_key_type and "
                     "img_signature_certificate_uuid."),
    cfg.ListOpt("mbr_fatal_checks", default=["boot_flag", "pmbr_start_lba"],
                help="MBR/GPT partition-table problems that reject an image; "
                     "the others are recorded as warnings. Known: %s. "
                     "Protective MBRs with odd CHS values, hybrid MBRs and "
                     "empty tables are common in real images."
                     % ", ".join(MBR_CHECKS)),
    cfg.StrOpt("nested_image_policy", default="inspect",
               choices=[("inspect", "inspect an image found inside the "
                                    "payload and reject it if unsafe"),
                        ("reject", "reject any image whose payload is "
                                   "itself an image format")],
               help="What to do with an image whose guest data starts with "
                    "another image format."),
    cfg.IntOpt("luks_max_iterations", default=LUKS_MAX_ITERATIONS, min=1,
               help="Largest PBKDF2 iteration count accepted in a LUKS "
                    "header, for the master key digest and for every "
                    "active key slot (luks must also be in "
                    "allowed_disk_formats). Each count is CPU time spent by "
                    "whoever unlocks the image. The default is oslo.utils' "
                    "LUKS inspector limit; LUKS images made by qemu-img "
                    "7.2 with its defaults (iter-time 2 s) on a 2-vCPU Xeon "
                    "measured 1.1-1.6 million digest and 4.5-6.5 million "
                    "key slot iterations. qemu-img scales the counts to "
                    "the speed of the host that creates the image: images "
                    "made on much faster hosts can need more."),
    cfg.IntOpt("read_limit_kb", default=2048, min=512, max=64 * 1024,
               help="Most bytes (KiB) the engine itself reads from an image "
                    "before qemu-img runs; structures beyond it reject the "
                    "image."),
    cfg.IntOpt("qemu_cpu_seconds", default=8, min=1,
               help="CPU-time limit of each qemu-img call."),
    cfg.IntOpt("qemu_address_space_mb", default=1024, min=128,
               help="Address-space limit (MiB) of each qemu-img call."),
    cfg.IntOpt("qemu_timeout_seconds", default=60, min=1,
               help="Wall-clock limit of each qemu-img call; it is killed "
                    "after it."),
    cfg.StrOpt("qemu_img", default="qemu-img",
               help="qemu-img binary."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(validate_opts, group=GROUP)


def list_opts() -> List[Tuple[str, list]]:
    return [(GROUP, validate_opts)]
