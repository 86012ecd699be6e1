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

"""How old a cache file is.

``mtime`` is nova's measure: nova touches in-use bases every pass, so the
mtime of an unused base tells how long it has been unused. Any other tool
that touches the file (backup, rsync, a scanner) resets it, though, and a
file copied in keeps an old mtime. ``unused_since`` is a record kept by the
manager: the time it first saw the file unused, cleared when it is used
again or replaced (another inode).
"""

import json
import os
import time
from typing import Dict, Iterable, Optional

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def mtime_age(path: str, now: Optional[float] = None) -> Optional[float]:
    """Seconds since the last modification; None if the file is gone."""
    try:
        return (now or time.time()) - os.stat(path).st_mtime
    except FileNotFoundError:
        return None


class UnusedSinceRecord:
    """JSON file ``{name: {"since": epoch, "ino": inode}}``, saved atomically.

    A corrupt record is set aside and restarted: that can only make files
    look younger (kept longer), never older.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: Dict[str, dict] = {}
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path) as f:
                data = json.load(f)
            if not isinstance(data, dict):
                raise ValueError('not a JSON object')
            self.entries = {k: v for k, v in data.items()
                            if isinstance(v, dict) and 'since' in v}
        except FileNotFoundError:
            self.entries = {}
        except (OSError, ValueError) as exc:
            LOG.warning('Unused-since record %(path)s is unreadable '
                        '(%(err)s); starting a new one, files count as '
                        'unused from now', {'path': self.path, 'err': exc})
            try:
                os.replace(self.path, self.path + '.corrupt')
            except OSError:
                pass
            self.entries = {}

    def update(self, base_dir: str, unused: Iterable[str],
               now: Optional[float] = None) -> None:
        """Start the clock for newly unused files; stop it for the rest."""
        now = now or time.time()
        fresh = {}
        for name in unused:
            try:
                ino = os.stat(os.path.join(base_dir, name)).st_ino
            except FileNotFoundError:
                continue
            old = self.entries.get(name)
            if old is not None and old.get('ino') == ino:
                fresh[name] = old
            else:
                fresh[name] = {'since': now, 'ino': ino}
        self.entries = fresh

    def age(self, name: str, now: Optional[float] = None) -> Optional[float]:
        entry = self.entries.get(name)
        if entry is None:
            return None
        return (now or time.time()) - float(entry['since'])

    def forget(self, name: str) -> None:
        self.entries.pop(name, None)

    def save(self) -> None:
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.entries, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
