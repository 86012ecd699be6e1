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

"""The conversion options read once into a validated, immutable object.

oslo.config only checks a value when it is read; reading every option here
turns a typo in glance-image-import.conf into one clear error at the start
of an import instead of a failure halfway through a long conversion.
"""

import dataclasses
import functools
import importlib.metadata
import os
from typing import Dict, FrozenSet, Optional, Tuple

from oslo_config import cfg
from oslo_utils import units

from glance_ext.common import coordination
from glance_ext.conversion import options
from glance_ext.conversion import process
from glance_ext.exceptions import SettingsError


@functools.lru_cache(maxsize=1)
def tooz_backends() -> FrozenSet[str]:
    """The URL schemes tooz knows (its ``tooz.backends`` entry points)."""
    return frozenset(ep.name for ep in importlib.metadata.entry_points(
        group="tooz.backends"))


@dataclasses.dataclass(frozen=True)
class Settings:
    store_formats: Tuple[Tuple[str, str], ...] = ()
    default_format: str = "raw"
    source_format_rules: Tuple[Tuple[str, str], ...] = (("iso", options.KEEP),)
    store_precedence: Tuple[str, ...] = ()
    vmdk_subformat: str = "streamOptimized"
    vhd_subformat: str = "dynamic"
    qcow2_compat: str = "1.1"
    free_space_margin_percent: int = 10
    free_space_reserve: int = 256 * units.Mi
    coroutines: int = 8
    out_of_order_writes: bool = True
    cache_mode: str = "auto"
    direct_io_threshold: int = 0       # 0: a quarter of MemAvailable
    sparse_size_kb: int = 4
    rate_limit_mb: int = 0
    split_workers: int = 0             # 0: one per CPU, at most 4
    split_min_data: int = 512 * units.Mi
    qemu_nbd: str = "qemu-nbd"
    timeout_base_seconds: int = 120
    timeout_seconds_per_gb: int = 60
    address_space: int = 2048 * units.Mi
    nice: int = 10
    cpu_policy: process.CpuPolicy = process.CpuPolicy.NORMAL
    ionice_class: str = "best-effort"
    ionice_level: int = 7
    max_concurrent: int = 2
    lock_dir: str = ""
    slot_wait_seconds: int = 1800
    coordination_url: str = ""
    cluster_max_concurrent: int = 4
    coordination_unreachable: str = "fail"
    progress_interval_seconds: float = 5.0
    compare: bool = False
    record_source_sha512: bool = False
    qemu_img: str = "qemu-img"
    stream_raw: bool = True
    stream_open_timeout_seconds: int = 60
    nbdcopy: str = "nbdcopy"
    allow_copy_image_format_change: bool = False

    def __post_init__(self) -> None:
        where = "[%s]" % options.GROUP
        known = set(options.OUTPUT_FORMATS)
        for store, fmt in self.store_formats:
            if fmt not in known:
                raise SettingsError(
                    "%s store_formats: store %r wants %r, which is not an "
                    "output format (use one of %s)"
                    % (where, store, fmt, ", ".join(options.OUTPUT_FORMATS)))
        if self.coordination_url:
            scheme = self.coordination_url.split("://", 1)[0] \
                if "://" in self.coordination_url else ""
            backends = tooz_backends()
            if not scheme or (backends and scheme not in backends):
                raise SettingsError(
                    "%s coordination_url: %r is not a tooz backend URL "
                    "(SCHEME://HOST:PORT with SCHEME one of %s)"
                    % (where, coordination.redact(self.coordination_url),
                       ", ".join(sorted(backends)) or "tooz's backends"))
        for source, rule in self.source_format_rules:
            if rule != options.KEEP and rule not in known:
                raise SettingsError(
                    "%s source_format_rules: rule %s:%s must be 'keep' or "
                    "one of %s" % (where, source, rule,
                                   ", ".join(options.OUTPUT_FORMATS)))

    @property
    def store_format_map(self) -> Dict[str, str]:
        return dict(self.store_formats)

    @property
    def source_rule_map(self) -> Dict[str, str]:
        return dict(self.source_format_rules)

    def timeout_for(self, virtual_size: int) -> float:
        """Wall-clock limit scaled by size: a fixed limit either kills big
        conversions or lets a hung small one block a slot for hours."""
        gib = max(0.0, virtual_size / units.Gi)
        return float(self.timeout_base_seconds
                     + self.timeout_seconds_per_gb * gib)

    def tuning(self, cache_mode: str = "unsafe") -> process.Tuning:
        """How every process of one conversion runs: qemu-img's I/O
        options and the CPU and I/O priority, from these settings.
        ``cache_mode`` is the one already chosen for this conversion
        (``cache_mode = auto`` resolves per output, see
        ``process.choose_cache_mode``); the streaming path's producer
        reads only the priority fields."""
        return process.Tuning(
            coroutines=self.coroutines, out_of_order=self.out_of_order_writes,
            cache_mode=cache_mode, sparse_size_kb=self.sparse_size_kb,
            rate_limit_mb=self.rate_limit_mb, nice=self.nice,
            ionice_class=self.ionice_class, ionice_level=self.ionice_level,
            cpu_policy=self.cpu_policy)

    def slot_dir(self, staging_dir: str) -> str:
        if self.lock_dir:
            return self.lock_dir
        parent = os.path.dirname(os.path.abspath(staging_dir).rstrip("/"))
        return os.path.join(parent, "glance-ext-convert-slots")

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts,
                  overrides: Optional[Dict[str, object]] = None
                  ) -> "Settings":
        try:
            g = getattr(conf, options.GROUP)
            values = dict(
                store_formats=tuple(sorted(
                    (k.strip(), v.strip())
                    for k, v in (g.store_formats or {}).items())),
                default_format=g.default_format,
                source_format_rules=tuple(sorted(
                    (k.strip(), v.strip())
                    for k, v in (g.source_format_rules or {}).items())),
                store_precedence=tuple(s.strip() for s in g.store_precedence
                                       if s.strip()),
                vmdk_subformat=g.vmdk_subformat,
                vhd_subformat=g.vhd_subformat,
                qcow2_compat=g.qcow2_compat,
                free_space_margin_percent=g.free_space_margin_percent,
                free_space_reserve=g.free_space_reserve_mb * units.Mi,
                coroutines=g.coroutines,
                out_of_order_writes=g.out_of_order_writes,
                cache_mode=g.cache_mode,
                direct_io_threshold=g.direct_io_threshold_mb * units.Mi,
                sparse_size_kb=g.sparse_size_kb,
                rate_limit_mb=g.rate_limit_mb,
                split_workers=g.split_workers,
                split_min_data=g.split_min_data_mb * units.Mi,
                qemu_nbd=g.qemu_nbd,
                timeout_base_seconds=g.timeout_base_seconds,
                timeout_seconds_per_gb=g.timeout_seconds_per_gb,
                address_space=g.address_space_mb * units.Mi,
                nice=g.nice,
                cpu_policy=process.CpuPolicy(g.cpu_policy),
                ionice_class=g.ionice_class,
                ionice_level=g.ionice_level,
                max_concurrent=g.max_concurrent,
                lock_dir=g.lock_dir,
                slot_wait_seconds=g.slot_wait_seconds,
                coordination_url=(g.coordination_url or "").strip(),
                cluster_max_concurrent=g.cluster_max_concurrent,
                coordination_unreachable=g.coordination_unreachable,
                progress_interval_seconds=g.progress_interval_seconds,
                compare=g.compare,
                record_source_sha512=g.record_source_sha512,
                qemu_img=g.qemu_img,
                stream_raw=g.stream_raw,
                stream_open_timeout_seconds=g.stream_open_timeout_seconds,
                nbdcopy=g.nbdcopy,
                allow_copy_image_format_change=(
                    g.allow_copy_image_format_change))
        except (cfg.Error, ValueError) as exc:
            raise SettingsError("invalid option in [%s]: %s"
                                % (options.GROUP, exc))
        values.update(overrides or {})
        return cls(**values)
