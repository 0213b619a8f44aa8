"""Liveness (``/healthz``) and readiness (``/readyz``) probes.

``/healthz`` answers 200 as long as the process can run a view: it touches nothing (no
database, no broker), so a restart is never triggered by a dependency's outage.

``/readyz`` runs the checks below and answers 200 when every *required* check passed, 503
otherwise, with a JSON body listing each check's status, whether it is required, its duration
in milliseconds and a short public detail (no host names, credentials or exception messages:
those go to the log):

- ``database``: ``SELECT 1`` on the default database.
- ``broker``: a kombu connection to the Celery broker, opened with one attempt and a connect
  timeout of ``EVALHUB_READYZ_TIMEOUT_MS`` (reads: 2 s longer).
- ``workers:<queue>``, one per queue of ``EVALHUB_READYZ_QUEUES`` (default: every queue Celery
  routes to, ``default`` and ``gpu``): at least one worker consuming the queue answered a
  broadcast ``active_queues`` inspection (a ping that also names the worker's queues) within
  ``EVALHUB_READYZ_TIMEOUT_MS``. Needs a broker with broadcast: Redis or AMQP. On kombu's
  filesystem broker (the embedded default) the check reports ``not_checkable`` and is not
  required: that transport does broadcast, but by polling folders once a second on each side
  (a reply takes 1-2 s), and a worker that died keeps its mailbox binding, so every later
  ping leaves a message file behind that nothing consumes.
- ``cache``: with a shared cache (``CACHE_URL``), one key written and read back. Sessions and
  the rating throttle live there, so a cache that is down fails sign-in and rating; with the
  embedded default's per-process memory cache the check reports ``not_checkable`` and is not
  required.
- ``media_disk``: free space on the filesystem holding ``MEDIA_ROOT`` (or its nearest existing
  parent) is at least ``EVALHUB_READYZ_MIN_FREE_MB`` MiB; ``not_checkable`` when media live on
  an object store.

A readiness result is reused for ``EVALHUB_READYZ_CACHE_SECONDS`` (default 5 s) per process,
and concurrent requests wait for the one check in progress: the endpoint needs no
authentication, and each check broadcasts to every worker and waits up to the timeout.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from celery import Celery
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.files.storage import FileSystemStorage, storages
from django.db import connections
from django.http import HttpRequest, JsonResponse
from kombu import Connection

logger = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed"
NOT_CHECKABLE = "not_checkable"

# Broker URL schemes whose kombu transport delivers broadcasts (fanout) promptly and drops a
# dead worker's mailbox: worker pings are checked only there.
PING_TRANSPORTS = frozenset({"redis", "rediss", "sentinel", "amqp", "amqps", "pyamqp"})

DEFAULT_TIMEOUT_MS = 1000
DEFAULT_MIN_FREE_MB = 1024
DEFAULT_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Check:
    """The outcome of one readiness check.

    ``status`` is ``ok``, ``failed`` or ``not_checkable``; only a ``failed`` check that is
    ``required`` makes the process not ready. ``duration_ms`` is wall time in milliseconds.
    ``detail`` is safe to show to anyone.
    """

    name: str
    status: str
    required: bool
    duration_ms: float
    detail: str


@dataclass(frozen=True)
class Readiness:
    """All checks of one ``/readyz`` evaluation, taken at ``checked_at`` (UTC)."""

    checked_at: datetime
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return not any(check.required and check.status == FAILED for check in self.checks)

    def to_json(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "not_ready",
            "checked_at": self.checked_at.isoformat(timespec="milliseconds"),
            "checks": [asdict(check) for check in self.checks],
        }


@dataclass(frozen=True)
class ReadinessOptions:
    """What ``/readyz`` checks and how long it waits (from the ``EVALHUB_READYZ_*`` settings).

    ``timeout_s``: broker connect/read timeout and the window in which workers may answer.
    ``queues``: queues that need at least one answering worker. ``min_free_bytes``: floor of
    free space under ``MEDIA_ROOT``.
    """

    timeout_s: float
    queues: tuple[str, ...]
    min_free_bytes: int

    @classmethod
    def from_settings(cls, app: Celery) -> ReadinessOptions:
        queues = getattr(settings, "EVALHUB_READYZ_QUEUES", None)
        return cls(
            timeout_s=getattr(settings, "EVALHUB_READYZ_TIMEOUT_MS", DEFAULT_TIMEOUT_MS) / 1000,
            queues=tuple(configured_queues(app) if queues is None else queues),
            min_free_bytes=getattr(settings, "EVALHUB_READYZ_MIN_FREE_MB",
                                   DEFAULT_MIN_FREE_MB) * 1024 * 1024,
        )


def configured_queues(app: Celery) -> list[str]:
    """The queues Celery sends to: the default queue and every queue named in the routes."""
    queues = [app.conf.task_default_queue]
    routes = app.conf.task_routes or {}
    for route in (routes.values() if isinstance(routes, dict) else []):
        queue = route.get("queue") if isinstance(route, dict) else None
        if queue and queue not in queues:
            queues.append(queue)
    return queues


def broker_scheme(app: Celery) -> str:
    """The broker URL's scheme (``redis``, ``filesystem``, ...); the first of a failover list."""
    url = app.conf.broker_url or ""
    return urlsplit(url.split(";")[0].strip()).scheme.lower()


def broker_connection(app: Celery, timeout_s: float) -> Connection:
    """A kombu connection to ``app``'s broker whose connect and socket reads give up after
    ``timeout_s`` seconds (Redis options; other transports ignore them)."""
    return app.connection_for_write(
        connect_timeout=timeout_s,
        transport_options={"socket_connect_timeout": timeout_s,
                           # Reads wait longer than a broadcast's reply window.
                           "socket_timeout": timeout_s + 2},
    )


def _timed(name: str, required: bool, probe: Callable[[], tuple[str, str]]) -> Check:
    start = time.perf_counter()
    try:
        status, detail = probe()
    except Exception as exc:
        # The body is public: the exception's class only; its message (hosts, users) is logged.
        logger.warning("readiness check %s failed", name, exc_info=True)
        status, detail = FAILED, type(exc).__name__
    return Check(name, status, required, round((time.perf_counter() - start) * 1000, 1),
                 detail)


def check_database() -> Check:
    """``SELECT 1`` on the default database."""

    def probe() -> tuple[str, str]:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return OK, connections["default"].vendor

    return _timed("database", True, probe)


def check_broker(app: Celery, timeout_s: float) -> Check:
    """One connection attempt to the broker (Redis: connect and ``PING``)."""

    def probe() -> tuple[str, str]:
        with broker_connection(app, timeout_s) as conn:
            conn.ensure_connection(max_retries=0, timeout=timeout_s)
        return OK, broker_scheme(app)

    return _timed("broker", True, probe)


def check_workers(app: Celery, queues: tuple[str, ...], timeout_s: float, *,
                  broker_up: bool) -> list[Check]:
    """One check per queue: did a worker consuming it answer within ``timeout_s``?

    One broadcast serves every queue. Celery's inspection keeps collecting replies until
    ``timeout_s`` passes without one, so the check takes about ``timeout_s``.
    """
    scheme = broker_scheme(app)
    if scheme not in PING_TRANSPORTS:
        detail = f"{scheme or 'this'} broker: worker pings are not checked (docs/operations.md)"
        return [Check(f"workers:{queue}", NOT_CHECKABLE, False, 0.0, detail)
                for queue in queues]
    if not broker_up:
        return [Check(f"workers:{queue}", FAILED, True, 0.0, "broker unreachable")
                for queue in queues]
    start = time.perf_counter()
    try:
        with broker_connection(app, timeout_s) as conn:
            replies = app.control.inspect(timeout=timeout_s, connection=conn).active_queues()
    except Exception as exc:
        logger.warning("readiness check of the workers failed", exc_info=True)
        duration = round((time.perf_counter() - start) * 1000, 1)
        return [Check(f"workers:{queue}", FAILED, True, duration, type(exc).__name__)
                for queue in queues]
    duration = round((time.perf_counter() - start) * 1000, 1)
    answering: dict[str, int] = {}
    for worker_queues in (replies or {}).values():
        for name in {q.get("name") for q in worker_queues or []}:
            answering[name] = answering.get(name, 0) + 1
    checks = []
    for queue in queues:
        count = answering.get(queue, 0)
        checks.append(Check(
            f"workers:{queue}", OK if count else FAILED, True, duration,
            f"{count} worker(s) answered" if count else
            f"no worker consuming {queue!r} answered within {timeout_s:g} s"))
    return checks


def check_cache() -> Check:
    """A key of the shared cache written and read back (``not_checkable`` for local memory)."""
    cache = caches["default"]
    if isinstance(cache, LocMemCache):
        return Check("cache", NOT_CHECKABLE, False, 0.0, "local memory of each process")

    def probe() -> tuple[str, str]:
        # A key of this probe's own: every process and replica probes the one cache, and a
        # shared key written by two overlapping probes would fail one of them.
        key = f"readyz:probe:{uuid.uuid4().hex}"
        cache.set(key, 1, timeout=30)
        try:
            if cache.get(key) != 1:
                return FAILED, "a written key did not read back"
        finally:
            cache.delete(key)
        return OK, type(cache).__name__

    return _timed("cache", True, probe)


def check_media_disk(min_free_bytes: int) -> Check:
    """Free space (bytes available to this user) where media files are written."""

    def probe() -> tuple[str, str]:
        storage = storages["default"]
        if not isinstance(storage, FileSystemStorage):
            return NOT_CHECKABLE, f"media on {type(storage).__name__}, not a local filesystem"
        path = Path(storage.location)
        while not path.exists() and path != path.parent:  # MEDIA_ROOT is created on first write
            path = path.parent
        free = shutil.disk_usage(path).free
        mib = 1024 * 1024
        detail = f"{free // mib} MiB free, floor {min_free_bytes // mib} MiB"
        return (OK if free >= min_free_bytes else FAILED), detail

    return _timed("media_disk", True, probe)


def evaluate_readiness(app: Celery, options: ReadinessOptions) -> Readiness:
    """Run every readiness check once (no cache)."""
    checked_at = datetime.now(UTC)
    database = check_database()
    broker = check_broker(app, options.timeout_s)
    workers = check_workers(app, options.queues, options.timeout_s,
                            broker_up=broker.status == OK)
    cache = check_cache()
    disk = check_media_disk(options.min_free_bytes)
    return Readiness(checked_at, (database, broker, *workers, cache, disk))


_cache_lock = threading.Lock()
_cached: tuple[float, Readiness] | None = None


def current_readiness(app: Celery) -> Readiness:
    """The readiness of this process, reused for ``EVALHUB_READYZ_CACHE_SECONDS``."""
    global _cached
    max_age = float(getattr(settings, "EVALHUB_READYZ_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))
    with _cache_lock:
        now = time.monotonic()
        if max_age > 0 and _cached is not None and now - _cached[0] < max_age:
            return _cached[1]
        readiness = evaluate_readiness(app, ReadinessOptions.from_settings(app))
        _cached = (time.monotonic(), readiness)
        return readiness


def forget_readiness() -> None:
    """Drop the cached result (tests, or after changing the configuration at run time)."""
    global _cached
    with _cache_lock:
        _cached = None


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: 200 whenever this process can answer. Touches no dependency.

    ``database`` is the configured database vendor (read from the settings, no query).
    """
    return JsonResponse({"status": "ok", "database": connections["default"].vendor})


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every required check passed, 503 otherwise; the checks in JSON."""
    from evalhub.config.celery import app

    readiness = current_readiness(app)
    response = JsonResponse(readiness.to_json(), status=200 if readiness.ready else 503)
    response["Cache-Control"] = "no-store"
    return response
