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

"""Prometheus metrics of the cache manager.

Written after every pass to a textfile (for node_exporter's textfile
collector, the usual way on compute nodes) and/or served over HTTP in
daemon mode. A private registry keeps the process's default metrics out.
"""

from typing import Optional

import prometheus_client as prom


class Metrics:

    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry()
        self.cache_bytes = prom.Gauge(
            'glance_ext_cache_manager_cache_bytes',
            'Bytes on disk of the nova image cache, by state.',
            ['state'], registry=self.registry)
        self.files = prom.Gauge(
            'glance_ext_cache_manager_files',
            'Files in the nova image cache, by state.', ['state'],
            registry=self.registry)
        self.quarantine_bytes = prom.Gauge(
            'glance_ext_cache_manager_quarantine_bytes',
            'Bytes held in quarantine.', registry=self.registry)
        self.reclaimed = prom.Counter(
            'glance_ext_cache_manager_reclaimed_bytes',
            'Bytes moved out of the cache into quarantine.',
            registry=self.registry)
        self.purged = prom.Counter(
            'glance_ext_cache_manager_purged_bytes',
            'Bytes deleted from quarantine.', registry=self.registry)
        self.last_pass = prom.Gauge(
            'glance_ext_cache_manager_last_pass_timestamp_seconds',
            'End of the last completed pass.', registry=self.registry)
        self.pass_duration = prom.Gauge(
            'glance_ext_cache_manager_last_pass_duration_seconds',
            'Duration of the last completed pass.', registry=self.registry)
        self.blocked = prom.Gauge(
            'glance_ext_cache_manager_removal_blocked',
            '1 when the last pass removed nothing because of a stale host, '
            'an unreadable disk, or another manager acting.',
            registry=self.registry)

    def observe(self, result) -> None:
        """Set the gauges from a PassResult."""
        self.cache_bytes.clear()
        self.files.clear()
        for state, (count, size) in result.totals_by_state().items():
            self.files.labels(state=state).set(count)
            self.cache_bytes.labels(state=state).set(size)
        self.quarantine_bytes.set(result.quarantine_bytes)
        self.reclaimed.inc(result.reclaimed_bytes)
        self.purged.inc(result.purged_bytes)
        self.last_pass.set(result.finished)
        self.pass_duration.set(result.finished - result.started)
        self.blocked.set(1 if result.blocked_reasons else 0)

    def write_textfile(self, path: str) -> None:
        prom.write_to_textfile(path, self.registry)

    def serve(self, port: int, address: Optional[str] = '127.0.0.1'):
        return prom.start_http_server(port, addr=address or '127.0.0.1',
                                      registry=self.registry)
