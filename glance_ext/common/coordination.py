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

"""The one way glance_ext talks to a tooz coordination backend.

Used by the cluster-wide conversion cap (``conversion.cluster``) and the
cache manager's election (``cache_manager.election``), two engines, so it
lives in ``common``. tooz does the
locking; this module adds what those callers need and tooz does not give
(each measured against etcd 3.4 and redis 7.0 here):

- **A bounded answer when the backend is down.** tooz's redis driver
  retries a refused connection 15 times (about 60 s here) before it
  raises, so every call is preceded by a plain TCP connect to the
  backend (milliseconds), and a refused or unreachable backend is
  reported at once as ``exceptions.CoordinationUnavailable``, an
  environment fault (a ``ToolUnavailable``, never an image refusal) that
  names the backend and what to do.
- **A stop that returns.** tooz's own heartbeat thread retries a failed
  heartbeat forever and ``coordinator.stop()`` joins it, so a backend
  that dies while a lock is held hangs the caller for as long as the
  backend is away. Locks here are kept alive by a thread of our own that
  logs failures and stops when asked, and releasing and stopping are
  bounded in time (a lock not released expires with its lease, after the
  driver's ``lock_timeout``).
- **Credentials never in messages or logs** (``redact``).

The backend drivers are optional dependencies: ``etcd3gw`` for
``etcd3+http(s)://`` and ``redis`` for ``redis://`` (``pip install
glance_ext[etcd]`` / ``[redis]``); a missing one is reported with the
package to install.
"""

import socket
import threading
import time
import urllib.parse
import uuid
import warnings
from typing import Callable, Dict, Optional, Set, Tuple

from oslo_log import log as logging

from glance_ext import exceptions
from glance_ext.exceptions import CoordinationUnavailable

with warnings.catch_warnings():
    # tooz imports futurist, which warns that eventlet is deprecated even
    # though nothing here uses eventlet.
    warnings.simplefilter("ignore")
    import tooz
    from tooz import coordination

LOG = logging.getLogger(__name__)

# Default ports of the tooz backends that talk TCP (for the reachability
# check when the URL names none).
DEFAULT_PORTS = {
    "etcd3+http": 2379, "etcd3+https": 2379, "etcd3": 2379,
    "redis": 6379, "rediss": 6379,
    "zookeeper": 2181, "kazoo": 2181, "zake": None,
    "memcached": 11211, "mysql": 3306, "postgresql": 5432,
    "consul": 8500, "kubernetes": None, "file": None, "ipc": None,
}
# The Python package each tooz driver imports, and how to get it.
DRIVER_PACKAGES = {
    "etcd3gw": "pip install etcd3gw (or glance_ext[etcd])",
    "redis": "pip install redis (or glance_ext[redis])",
    "kazoo": "pip install kazoo",
    "pymemcache": "pip install pymemcache",
    "pymysql": "pip install PyMySQL",
    "psycopg2": "pip install psycopg2",
}
_SECRET_QUERY_KEYS = ("password", "sentinel_password", "token", "secret")


def redact(url: str) -> str:
    """``url`` without its password (user info or query), for messages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "(unparsable coordination URL)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = "%s:***@%s" % (user, host) if ":" in userinfo else \
            "%s@%s" % (user, host)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, "***" if k.lower() in _SECRET_QUERY_KEYS else v)
             for k, v in query]
    return urllib.parse.urlunsplit(
        (parts.scheme, netloc, parts.path,
         urllib.parse.urlencode(query, safe="*:/"), ""))


def endpoint(url: str) -> Optional[Tuple[str, object]]:
    """What to connect to for the reachability check: ("tcp", (host,
    port)), ("unix", path), or None when the backend has no socket of its
    own (file, ipc) or the port is unknown."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme.startswith("redis") and not parts.hostname and parts.path:
        return ("unix", parts.path)
    default = DEFAULT_PORTS.get(scheme)
    if default is None and scheme in DEFAULT_PORTS:
        return None
    try:
        port = parts.port or default
    except ValueError:
        return None
    if not port:
        return None
    return ("tcp", (parts.hostname or "localhost", port))


def check_reachable(url: str, timeout: float = 2.0,
                    what: str = "coordination", then: str = "") -> None:
    """Connect to the backend's socket once; raise CoordinationUnavailable
    when that fails. (Why: see the module docstring, tooz's redis driver
    takes about a minute to report a refused connection.) ``what`` is the
    job that needs the backend, ``then`` what its user can do meanwhile;
    both go into the message's fix."""
    target = endpoint(url)
    if target is None:
        return
    kind, address = target
    try:
        if kind == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
        else:
            with socket.create_connection(address, timeout=timeout):
                pass
    except OSError as exc:
        raise CoordinationUnavailable(
            backend=redact(url), tool="coordination backend",
            reason="cannot connect to %s (%s)" % (
                address if kind == "unix" else "%s:%s" % address,
                exc.strerror or exc),
            fix=fix_text(what, then))


def fix_text(what: str, then: str = "") -> str:
    """What an operator does about an unreachable backend (and what the
    user of ``what`` can do meanwhile, ``then``)."""
    text = ("start it or make it reachable from this host (%s); this is a "
            "fault of the deployment, not of any image" % what)
    return "%s; %s" % (text, then) if then else text


class Session:
    """A started tooz coordinator for one job (a conversion, a cache
    pass), with the locks it holds kept alive by a thread of our own.

    ``purpose`` names the job in logs and messages ("the cluster-wide
    conversion cap ([glance_ext_convert] coordination_url)"); ``then``
    is what its user can do while the backend is away, for the messages.
    """

    def __init__(self, url: str, member: str, purpose: str,
                 connect_timeout: float = 2.0,
                 stop_timeout: float = 5.0, then: str = "") -> None:
        self.url = url
        self.backend = redact(url)
        self.purpose = purpose
        self.then = then
        self.connect_timeout = connect_timeout
        self.stop_timeout = stop_timeout
        self.member = ("%s-%s" % (member, uuid.uuid4().hex[:8])).encode()
        self._locks: Set[object] = set()
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._keeper: Optional[threading.Thread] = None
        self.last_beat = time.monotonic()
        self.beat_failures = 0
        self.coordinator = self._call(self._make, "connect")
        self._started = True

    # -- errors --------------------------------------------------------
    def _unavailable(self, reason: str) -> CoordinationUnavailable:
        return CoordinationUnavailable(backend=self.backend,
                                       tool="coordination backend",
                                       reason=reason,
                                       fix=fix_text(self.purpose, self.then))

    def _check(self) -> None:
        check_reachable(self.url, self.connect_timeout, self.purpose,
                        self.then)

    def _call(self, fn: Callable, what: str):
        """``fn()`` after the reachability check, tooz's errors turned
        into CoordinationUnavailable."""
        self._check()
        try:
            return fn()
        except CoordinationUnavailable:
            raise
        except tooz.ToozError as exc:
            raise self._unavailable("%s failed: %s" % (
                what, str(exc) or type(exc).__name__))

    def _make(self):
        try:
            coordinator = coordination.get_coordinator(self.url, self.member)
        except ImportError as exc:
            name = getattr(exc, "name", None) or str(exc)
            raise exceptions.ToolUnavailable(
                tool="the tooz driver of %s" % self.backend,
                reason="its Python package %s is not installed in this "
                       "environment" % name,
                fix=DRIVER_PACKAGES.get(name, "pip install %s" % name))
        except RuntimeError as exc:      # stevedore: no such driver
            raise exceptions.ConfigurationError(
                reason="%s is not a tooz backend URL (%s); see %s"
                       % (self.backend, exc, self.purpose))
        coordinator.start(start_heart=False)
        return coordinator

    # -- locks ---------------------------------------------------------
    @property
    def lock_timeout(self) -> Optional[float]:
        """Seconds after which the backend frees a lock nobody refreshes
        (None: the driver's locks do not expire, e.g. file)."""
        value = getattr(self.coordinator, "lock_timeout", None)
        return float(value) if value else None

    def try_lock(self, name: bytes) -> Optional[object]:
        """The tooz lock ``name`` if it is free (held until ``release``),
        else None."""
        lock = self.coordinator.get_lock(name)
        if not self._call(lambda: lock.acquire(blocking=False), "acquire"):
            return None
        with self._guard:
            self._locks.add(lock)
        self._keep_alive()
        return lock

    def _reachable(self) -> bool:
        try:
            self._check()
        except CoordinationUnavailable as exc:
            LOG.warning("%s; not contacting it to release or disconnect "
                        "(a lock left there expires after %s s)", exc,
                        self.lock_timeout or "?")
            return False
        return True

    def release(self, lock: object) -> None:
        """Release, bounded in time; a failure is logged (the backend
        frees the lock when its lease expires). A backend known to be
        unreachable is not asked (tooz would retry for a minute)."""
        with self._guard:
            self._locks.discard(lock)
        ok = self._reachable() and _bounded(
            lambda: lock.release(), self.stop_timeout,
            "releasing %s on %s" % (_name(lock), self.backend))
        if not ok:
            LOG.warning("Could not release %s on %s; the backend frees it "
                        "after its lock timeout (%s s)", _name(lock),
                        self.backend, self.lock_timeout or "?")

    def healthy(self) -> bool:
        """Whether the locks held are known to be ours still: the last
        refresh succeeded within half the lock timeout."""
        timeout = self.lock_timeout
        if timeout is None or self._keeper is None:
            return True
        return time.monotonic() - self.last_beat < timeout / 2.0

    def _keep_alive(self) -> None:
        if self._keeper is not None or not self.coordinator.requires_beating:
            return
        self.last_beat = time.monotonic()
        self._keeper = threading.Thread(
            target=self._beat, name="glance-ext-coordination-keepalive",
            daemon=True)
        self._keeper.start()

    def _beat(self) -> None:
        """Refresh the held locks until stopped. tooz's heart does the
        same but cannot be stopped while the backend is down."""
        interval = 1.0
        last_warning = 0.0
        while not self._stop.wait(interval):
            try:
                self._check()
                wait = self.coordinator.heartbeat()
            except Exception as exc:
                self.beat_failures += 1
                now = time.monotonic()
                if now - last_warning > 30:
                    last_warning = now
                    LOG.warning(
                        "Cannot refresh the locks of %s on %s: %s; what "
                        "holds them goes on, and the backend frees them "
                        "after %s s without a refresh", self.purpose,
                        self.backend, exc, self.lock_timeout or "?")
                interval = 1.0
                continue
            if self.beat_failures:
                LOG.info("%s reachable again for %s", self.backend,
                         self.purpose)
                self.beat_failures = 0
            self.last_beat = time.monotonic()
            interval = max(0.2, float(wait or 1.0) / 3.0)

    def stop(self) -> None:
        """Release what is held and disconnect; bounded, never raises."""
        if not self._started:
            return
        self._started = False
        self._stop.set()
        with self._guard:
            held = list(self._locks)
            self._locks.clear()
        if not self._reachable():
            return
        for lock in held:
            _bounded(lambda: lock.release(), self.stop_timeout,
                     "releasing %s on %s" % (_name(lock), self.backend))
        _bounded(self.coordinator.stop, self.stop_timeout,
                 "disconnecting from %s" % self.backend)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _name(lock: object) -> str:
    name = getattr(lock, "name", b"")
    return name.decode(errors="replace") if isinstance(name, bytes) \
        else str(name)


def _bounded(fn: Callable[[], object], timeout: float, what: str) -> bool:
    """Run ``fn`` in a daemon thread for at most ``timeout`` seconds;
    whether it finished without error. A call still running is left to
    finish on its own (tooz gives no way to cancel one)."""
    outcome: Dict[str, object] = {}

    def run() -> None:
        try:
            fn()
            outcome["ok"] = True
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="glance-ext-coordination",
                              daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        LOG.warning("Gave up %s after %.0f s", what, timeout)
        return False
    if "error" in outcome:
        LOG.warning("Failed %s: %s", what, outcome["error"])
        return False
    return True
