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

"""Options of the ``glance_ext_decompress`` plugin: one group."""

from typing import List, Tuple

from oslo_config import cfg

GROUP = "glance_ext_decompress"
CODECS = ("gzip", "bzip2", "xz", "zstd", "zip")

decompress_opts = [
    cfg.ListOpt("codecs", default=list(CODECS),
                help="Codecs to decompress (detected by magic bytes); data "
                     "in another codec is left alone. Known: %s."
                     % ", ".join(CODECS)),
    cfg.IntOpt("max_output_gb", default=128, min=1,
               help="Largest decompressed size (GiB); beyond it the import "
                    "is refused as soon as the limit is crossed."),
    cfg.FloatOpt("max_ratio", default=1000.0, min=0.0,
                 help="Largest decompressed/compressed size ratio; 0 means "
                      "no limit. Checked while streaming once the output "
                      "passes ratio_grace_mb, so a bomb is refused early. A "
                      "gzip of zeros reaches about 1030:1; real images "
                      "rarely pass 20:1 unless mostly empty (import those "
                      "as qcow2)."),
    cfg.IntOpt("ratio_grace_mb", default=64, min=0,
               help="Output (MiB) below which the ratio is not checked, so "
                    "small, very compressible images pass."),
    cfg.IntOpt("free_space_reserve_mb", default=256, min=0,
               help="Space (MiB) that must stay free in the staging "
                    "directory while decompressing; checked as the output "
                    "grows."),
    cfg.IntOpt("xz_memory_limit_mb", default=256, min=16,
               help="Memory limit (MiB) of the xz decoder; an xz header "
                    "that asks for more is refused."),
    cfg.IntOpt("zstd_max_window_mb", default=128, min=1,
               help="Largest zstd window (MiB) accepted; bounds the "
                    "decoder's memory."),
    cfg.BoolOpt("skip_compressed_container", default=True,
                help="Leave images with container_format 'compressed' as "
                     "they are (the user asked to store them compressed), "
                     "as Glance's image_decompression does."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(decompress_opts, group=GROUP)


def list_opts() -> List[Tuple[str, list]]:
    return [(GROUP, decompress_opts)]
