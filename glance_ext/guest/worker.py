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

"""The short-lived, resource-limited process that inspects one image.

Why a process: the libyal readers are C code parsing untrusted
filesystems, and qemu-nbd parses untrusted containers. Both run in a
process of their own (a new session, so qemu-nbd is killed with it) under
``oslo_concurrency.prlimit`` (address space and CPU seconds, inherited by
qemu-nbd) and a wall-clock timeout, so a crafted image can at worst cost
one worker, never the Glance API process. The report comes back as JSON on
stdout.

``python -m glance_ext.guest.worker --disk-format F [...] PATH`` is the
child side; ``run`` is the parent side.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict

from glance_ext import exceptions
from glance_ext.common import exits

# The child side imports only what the engine needs: each import here is
# paid on every inspection (oslo_concurrency and oslo_log are imported in
# ``run``, the parent side, only).
MiB = 1024 * 1024
KiB = 1024


class WorkerSettings:
    """The limits and bounds of one inspection (from ``[glance_ext_guest]``)."""

    def __init__(self, read_budget_mb: int = 16, cpu_seconds: int = 20,
                 memory_mb: int = 1024, timeout_seconds: float = 60,
                 qemu_nbd: str = "qemu-nbd", max_file_kb: int = 256,
                 max_dir_entries: int = 4096, inventory: bool = True,
                 inventory_budget_mb: int = 128) -> None:
        self.read_budget_mb = read_budget_mb
        self.cpu_seconds = cpu_seconds
        self.memory_mb = memory_mb
        self.timeout_seconds = timeout_seconds
        self.qemu_nbd = qemu_nbd
        self.max_file_kb = max_file_kb
        self.max_dir_entries = max_dir_entries
        self.inventory = inventory
        self.inventory_budget_mb = inventory_budget_mb

    @classmethod
    def from_conf(cls, group) -> "WorkerSettings":
        return cls(group.read_budget_mb, group.worker_cpu_seconds,
                   group.worker_memory_mb, group.worker_timeout_seconds,
                   group.qemu_nbd, group.max_file_kb, group.max_dir_entries,
                   group.inventory, group.inventory_budget_mb)


# ``error_kind`` of a report whose inspection the host could not run (a
# tool missing or unusable): an environment fault, not the image's.
TOOL_UNAVAILABLE = "tool_unavailable"


def _failed(path: str, disk_format: str, message: str,
            elapsed: float, kind: str = "") -> Dict[str, Any]:
    return {"path": path, "disk_format": disk_format, "error": message,
            "error_kind": kind,
            "os": {"os_type": "unknown"}, "checks": [], "partitions": [],
            "notes": [], "bytes_read": None, "elapsed": round(elapsed, 4)}


def run(path: str, disk_format: str,
        settings: WorkerSettings) -> Dict[str, Any]:
    """Inspect ``path`` in a limited worker; always returns a report dict."""
    from oslo_log import log as logging

    from glance_ext.qemu import runner

    python = runner.interpreter()      # InterpreterUnusable: the host's
    cmd = [python, "-m", "glance_ext.guest.worker",
           "--disk-format", disk_format,
           "--budget-mb", str(settings.read_budget_mb),
           "--qemu-nbd", settings.qemu_nbd,
           "--max-file-kb", str(settings.max_file_kb),
           "--max-dir-entries", str(settings.max_dir_entries),
           "--inventory-mb", str(settings.inventory_budget_mb
                                 if settings.inventory else 0),
           "--", os.path.abspath(path)]
    limits = runner.Limits(cpu_seconds=settings.cpu_seconds,
                           address_space_bytes=settings.memory_mb * MiB,
                           timeout_seconds=settings.timeout_seconds)
    start = time.monotonic()
    try:
        done = exits.run(runner.limited_command(cmd, limits, python),
                         env=runner.child_env(),
                         timeout=settings.timeout_seconds, new_session=True)
    except OSError as exc:
        raise exceptions.ToolUnavailable(
            tool="the guest inspection worker", reason="cannot run %s: %s"
            % (python, exc.strerror or exc),
            fix="set [wsgi] python_interpreter to the Python of Glance's "
                "environment")
    except subprocess.TimeoutExpired:
        return _failed(path, disk_format,
                       "the inspection did not finish within %ss and was "
                       "killed" % settings.timeout_seconds,
                       time.monotonic() - start)
    # qemu-nbd is in the worker's session: never leave it behind.
    exits.kill_group(done.pid)
    elapsed = time.monotonic() - start
    returncode, stdout, stderr = done.returncode, done.stdout, done.stderr
    ended = exits.classify(returncode, done.cpu_seconds, settings.cpu_seconds)
    if ended.kind == "limit":
        return _failed(path, disk_format,
                       "the inspection worker was killed by %s: its %s "
                       "limit was reached (limits: %ds CPU, %d MiB memory)"
                       % (ended.by, ended.limit, settings.cpu_seconds,
                          settings.memory_mb), elapsed)
    if ended.kind == "killed":
        return _failed(path, disk_format,
                       "the inspection worker was killed by %s from outside"
                       % ended.by, elapsed)
    try:
        report = json.loads(stdout)
    except ValueError:
        logging.getLogger(__name__).warning(
            "guest inspection worker failed (status %s): %s",
            returncode, stderr[-2000:])
        tail = stderr.strip().splitlines()[-1:] or ["no output"]
        return _failed(path, disk_format,
                       "the inspection worker failed (status %s): %s"
                       % (returncode, tail[0][:300]), elapsed)
    report["worker_elapsed"] = round(elapsed, 4)
    return report


def main(argv=None) -> int:
    from glance_ext.guest import engine

    parser = argparse.ArgumentParser(prog="glance_ext.guest.worker")
    parser.add_argument("--disk-format", required=True)
    parser.add_argument("--budget-mb", type=int, default=16)
    parser.add_argument("--qemu-nbd", default="qemu-nbd")
    parser.add_argument("--max-file-kb", type=int, default=256)
    parser.add_argument("--max-dir-entries", type=int, default=4096)
    parser.add_argument("--inventory-mb", type=int, default=0)
    parser.add_argument("path")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        report = engine.inspect(
            args.path, args.disk_format,
            budget_bytes=args.budget_mb * MiB, qemu_nbd=args.qemu_nbd,
            max_file_bytes=args.max_file_kb * KiB,
            max_dir_entries=args.max_dir_entries,
            inventory_bytes=args.inventory_mb * MiB)
    except exceptions.GlanceExtError as exc:
        report = _failed(args.path, args.disk_format, str(exc),
                         time.monotonic() - start,
                         TOOL_UNAVAILABLE if isinstance(
                             exc, exceptions.ToolUnavailable) else "")
    json.dump(report, sys.stdout)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
