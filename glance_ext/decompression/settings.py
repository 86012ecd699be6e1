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

"""The decompression's settings, read once from ``[glance_ext_decompress]``.

The plugin (and anything else that decompresses for Glance) builds one
``Settings`` from the configuration and hands the engine its ``limits``;
a bad value is a ``SettingsError`` (a configuration error) that names the
option.
"""

import dataclasses
from typing import FrozenSet

from oslo_config import cfg
from oslo_utils import units

from glance_ext.decompression import options
from glance_ext.decompression.stream import Limits
from glance_ext.exceptions import SettingsError


@dataclasses.dataclass(frozen=True)
class Settings:
    """What one import decompresses and within which limits."""

    limits: Limits
    codecs: FrozenSet[str]
    skip_compressed_container: bool

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> "Settings":
        options.register_opts(conf)
        try:
            g = getattr(conf, options.GROUP)
            unknown = set(g.codecs) - set(options.CODECS)
            if unknown:
                raise ValueError("codecs has unknown codec(s) %s; known: %s"
                                 % (", ".join(sorted(unknown)),
                                    ", ".join(options.CODECS)))
            limits = Limits(
                max_output=g.max_output_gb * units.Gi,
                max_ratio=g.max_ratio,
                ratio_grace=g.ratio_grace_mb * units.Mi,
                free_space_reserve=g.free_space_reserve_mb * units.Mi,
                xz_memory_limit=g.xz_memory_limit_mb * units.Mi,
                zstd_max_window=g.zstd_max_window_mb * units.Mi)
            return cls(limits=limits, codecs=frozenset(g.codecs),
                       skip_compressed_container=g.skip_compressed_container)
        except (cfg.Error, ValueError) as exc:
            raise SettingsError("invalid option in [%s]: %s"
                                % (options.GROUP, exc))
