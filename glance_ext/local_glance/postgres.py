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

"""A throwaway PostgreSQL cluster for a local Glance.

SQLite locks up with two or more concurrent imports, so concurrency tests
need a real server. The cluster lives in its own directory outside the
state dir (pytest's temporary directories are mode 0700 and owned by root,
which the ``postgres`` user cannot traverse), listens only on 127.0.0.1
and a port of its own, and is removed by ``down``.
"""

import dataclasses
import glob
import os
import shutil
import subprocess
import tempfile
from typing import Dict, List, Optional

from glance_ext.local_glance import errors

INSTALL_HINT = ("install the server with `apt-get install -y postgresql` "
                "(Debian/Ubuntu) or run with --db sqlite")


@dataclasses.dataclass
class Cluster:
    bin_dir: str
    data_dir: str
    port: int
    run_as: Optional[str]

    @property
    def url(self) -> str:
        return "postgresql+psycopg2://postgres@127.0.0.1:%d/glance" % self.port

    def to_dict(self) -> Dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict) -> "Cluster":
        return cls(**data)

    def running(self) -> bool:
        """``pg_ctl status``: whether the server of this cluster runs."""
        return subprocess.run(
            _command(self.bin_dir, self.run_as, "pg_ctl",
                     ["-D", os.path.join(self.data_dir, "data"), "status"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL).returncode == 0


def find_bin_dir() -> str:
    """The newest PostgreSQL server bin dir, or a clear error."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit()
        else 0)
    if candidates:
        return os.path.dirname(candidates[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise errors.LocalGlanceError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; "
        + INSTALL_HINT)


def _command(cluster_bin: str, run_as: Optional[str], tool: str,
             args: List[str]) -> List[str]:
    cmd = [os.path.join(cluster_bin, tool)] + args
    if run_as:
        # initdb refuses to run as root; run the cluster as its own user.
        cmd = ["runuser", "-u", run_as, "--"] + cmd
    return cmd


def _run(cmd: List[str], what: str) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise errors.LocalGlanceError(
            "PostgreSQL %s failed (exit %d):\n%s"
            % (what, proc.returncode, proc.stdout[-2000:]))


def create(port: int) -> Cluster:
    """initdb, start and create the ``glance`` database."""
    bin_dir = find_bin_dir()
    run_as = None
    data_dir = tempfile.mkdtemp(prefix="glance-ext-pg-")
    if os.geteuid() == 0:
        run_as = "postgres"
        try:
            import pwd
            entry = pwd.getpwnam(run_as)
        except KeyError:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise errors.LocalGlanceError(
                "there is no 'postgres' user to run the cluster as; "
                + INSTALL_HINT)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(bin_dir=bin_dir, data_dir=data_dir, port=port,
                      run_as=run_as)
    pgdata = os.path.join(data_dir, "data")
    try:
        _run(_command(bin_dir, run_as, "initdb",
                      ["-D", pgdata, "-A", "trust", "-U", "postgres",
                       "--no-sync", "-E", "UTF8"]), "initdb")
        options = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off "
                   "-c max_connections=200" % (port, data_dir))
        _run(_command(bin_dir, run_as, "pg_ctl",
                      ["-D", pgdata, "-l", os.path.join(data_dir, "log"),
                       "-o", options, "-w", "-t", "60", "start"]),
             "start (pg_ctl)")
        _run(_command(bin_dir, run_as, "createdb",
                      ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                       "glance"]), "createdb")
    except Exception:
        destroy(cluster)
        raise
    return cluster


def destroy(cluster: Cluster) -> None:
    """Stop the server (immediately: it is throwaway) and delete it."""
    pgdata = os.path.join(cluster.data_dir, "data")
    if os.path.exists(os.path.join(pgdata, "postmaster.pid")):
        subprocess.run(_command(cluster.bin_dir, cluster.run_as, "pg_ctl",
                                ["-D", pgdata, "-m", "immediate", "-w",
                                 "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL)
    shutil.rmtree(cluster.data_dir, ignore_errors=True)
