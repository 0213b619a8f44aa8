"""Prometheus metrics: what EvalHub counts, and ``/metrics`` in the text exposition format.

Counted as it happens (``prometheus_client`` counters and histograms):

- ``evalhub_http_request_duration_seconds{view, status}``: seconds from the request entering
  :class:`MetricsMiddleware` to its response object (a streamed body, such as an export, is
  not included), by URL name (``<unmatched>`` when no URL matched) and status class (``2xx``).
- ``evalhub_votes_recorded_total``: ``campaigns.signals.vote_recorded`` signals of
  ``kind="vote"``, i.e. stored human votes (undos are not counted); ``rate(...[5m]) * 60`` is
  votes per minute.
- ``evalhub_leases_expired_total``: leases marked expired because their time ran out (the
  serving code marks them when their pair is next served or undone:
  ``campaigns.signals.leases_expired``), so it lags the expiry itself.
- ``evalhub_celery_task_duration_seconds{task, state}``: task run time in the worker, from
  ``task_prerun`` to ``task_postrun``; ``state`` is Celery's (``SUCCESS``, ``FAILURE``,
  ``RETRY``).
- ``evalhub_celery_task_failures_total{task, exception}``: ``task_failure`` signals, by the
  exception's class name.
- ``evalhub_stalled_work_resumed_total{kind}``: objects the lost-message sweep resumed
  (``core/recovery.py``), by kind (``run``, ``metric_job``, ``campaign``).

Read at scrape time (:class:`LiveCollector`, in the process answering ``/metrics``):

- ``evalhub_celery_queue_length{queue}``: messages waiting in each queue (Redis: ``LLEN`` over
  kombu's priority lists of the queue; filesystem broker: message files). Tasks a worker has
  taken but not acknowledged are not waiting and not counted.
- ``evalhub_leases_open{state}``: leases still marked active; ``held`` before their
  ``expires_at``, ``expired`` after it (the annotator left the pair; it is closed when the pair
  is served again). One query over the active leases only.
- ``evalhub_stalled_work_last_sweep_timestamp_seconds``: when the lost-message sweep last
  ran (``core/recovery.py``), read from the shared cache (absent before the first sweep and
  without ``CACHE_URL``); ``time() -`` it growing past a few sweep intervals means beat or the
  ``default`` workers are down.
- ``evalhub_metrics_source_up{source}``: 1 when the ``broker`` / ``database`` answered the
  scrape-time reads, else 0 (and their gauges are left out).

With several processes (gunicorn workers, Celery prefork children) counters live in each
process: set ``PROMETHEUS_MULTIPROC_DIR`` to an empty, writable folder shared by the web
processes (and by the workers of the same host) before they start; ``/metrics`` then sums
every process's files (prometheus_client's multiprocess mode; docs/operations.md).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from evalhub.config.env import env_folder

# prometheus-client reads the folder itself when the first counter below is made, in every
# process that imports this module: a missing one was a traceback from inside the library.
env_folder("PROMETHEUS_MULTIPROC_DIR")

# Web requests: 5 ms to 10 s. Tasks: previews take well under a second, generation batches and
# metric shards minutes to hours (the task time limit is 6 h).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TASK_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0)

HTTP_REQUEST_DURATION = Histogram(
    "evalhub_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL name and status class.",
    ["view", "status"], buckets=HTTP_BUCKETS)
VOTES_RECORDED = Counter(
    "evalhub_votes_recorded",
    "Human votes stored (campaigns.signals.vote_recorded of kind vote; undos not counted).")
TASK_DURATION = Histogram(
    "evalhub_celery_task_duration_seconds",
    "Run time of a Celery task in its worker, by task name and final state.",
    ["task", "state"], buckets=TASK_BUCKETS)
TASK_FAILURES = Counter(
    "evalhub_celery_task_failures",
    "Celery tasks that raised, by task name and exception class.",
    ["task", "exception"])
LEASES_EXPIRED = Counter(
    "evalhub_leases_expired",
    "Leases marked expired because their time ran out (the annotator left the pair), once "
    "committed (campaigns.signals.leases_expired).")
#: Cache key of the Unix time the last lost-message sweep asked the broker and the workers
#: (written by ``core/recovery.py``; ``evalhub_stalled_work_last_sweep_timestamp_seconds``).
LAST_SWEEP_KEY = "stalled-work-last-sweep"
STALLED_WORK_RESUMED = Counter(
    "evalhub_stalled_work_resumed",
    "Unfinished objects whose task messages were lost, found and resumed by the sweep "
    "(core/recovery.py), by kind: run, metric_job, campaign.",
    ["kind"])

UNMATCHED_VIEW = "<unmatched>"
# Broker schemes whose queue sizes kombu reads without side effects.
QUEUE_LENGTH_TRANSPORTS = frozenset({"redis", "rediss", "sentinel", "filesystem"})


class MetricsMiddleware:
    """Observe every request's duration in ``evalhub_http_request_duration_seconds``.

    Put it right after :class:`evalhub.core.logging.RequestIdMiddleware`, before the others,
    so that their time counts too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None else UNMATCHED_VIEW
        HTTP_REQUEST_DURATION.labels(view, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - start)
        return response


def queue_lengths(queues: list[str] | tuple[str, ...], timeout_s: float) -> dict[str, int]:
    """Messages waiting in each queue, read from the broker now.

    Raises ``LookupError`` for a broker whose queue sizes are not read (see
    ``QUEUE_LENGTH_TRANSPORTS``) and the transport's error when the broker does not answer.
    """
    from kombu.exceptions import ChannelError

    from evalhub.config.celery import app
    from evalhub.core.health import broker_connection, broker_scheme

    if broker_scheme(app) not in QUEUE_LENGTH_TRANSPORTS:
        raise LookupError(broker_scheme(app))
    lengths = {}
    with broker_connection(app, timeout_s) as conn:
        channel = conn.default_channel
        for queue in queues:
            try:
                lengths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:  # Redis: no list under that name, i.e. nothing waiting
                lengths[queue] = 0
    return lengths


@dataclass(frozen=True)
class OpenLeases:
    """Leases still marked active: ``held`` before their ``expires_at``, ``expired`` after it
    (the annotator left the pair; the serving code closes it when the pair is next served)."""

    held: int
    expired: int


def open_leases() -> OpenLeases:
    """Count the open leases now, in one query over the active leases (which the partial
    unique index on active leases covers, whatever the number of closed ones)."""
    from django.db.models import Count, Q
    from django.utils import timezone

    from evalhub.campaigns.models import Lease, LeaseStatus

    now = timezone.now()
    counts = Lease.objects.filter(status=LeaseStatus.ACTIVE).aggregate(
        held=Count("pk", filter=Q(expires_at__gt=now)),
        expired=Count("pk", filter=Q(expires_at__lte=now)))
    return OpenLeases(held=counts["held"], expired=counts["expired"])


def _last_sweep() -> float | None:
    """When the lost-message sweep last ran (``core/recovery.py`` writes it to the cache), or
    None: never, the cache down, or a cache of another process (no ``CACHE_URL``)."""
    from django.core.cache import cache

    try:
        return cache.get(LAST_SWEEP_KEY)
    except Exception:  # the cache's own failure shows in /readyz
        return None


class LiveCollector(Collector):
    """Gauges read from the broker and the database when ``/metrics`` is scraped."""

    def collect(self) -> Iterator[Metric]:
        from evalhub.config.celery import app
        from evalhub.core.health import DEFAULT_TIMEOUT_MS, configured_queues

        up = GaugeMetricFamily("evalhub_metrics_source_up",
                               "1 when the source answered this scrape's reads.",
                               labels=["source"])
        timeout_s = getattr(settings, "EVALHUB_READYZ_TIMEOUT_MS", DEFAULT_TIMEOUT_MS) / 1000
        try:
            lengths = queue_lengths(configured_queues(app), timeout_s)
        except LookupError:
            pass  # a broker whose queue sizes are not read: no gauge, not a failure
        except Exception:
            up.add_metric(["broker"], 0)
        else:
            up.add_metric(["broker"], 1)
            gauge = GaugeMetricFamily("evalhub_celery_queue_length",
                                      "Messages waiting in a Celery queue.", labels=["queue"])
            for queue, length in lengths.items():
                gauge.add_metric([queue], length)
            yield gauge
        last_sweep = _last_sweep()
        if last_sweep is not None:
            gauge = GaugeMetricFamily(
                "evalhub_stalled_work_last_sweep_timestamp_seconds",
                "Unix time of the last lost-message sweep (core/recovery.py), from the cache.")
            gauge.add_metric([], last_sweep)
            yield gauge
        try:
            leases = open_leases()
        except Exception:
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            gauge = GaugeMetricFamily(
                "evalhub_leases_open",
                "Leases marked active: held (before expiry) or expired (annotator left).",
                labels=["state"])
            gauge.add_metric(["held"], leases.held)
            gauge.add_metric(["expired"], leases.expired)
            yield gauge
        yield up


class _ThisProcess(Collector):
    """The default registry's metrics (this process only, with process and GC metrics)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    """What one scrape exposes: every process's counters (multiprocess mode) or this
    process's, plus the scrape-time gauges."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(LiveCollector())
    return registry


def _from_loopback(request: HttpRequest) -> bool:
    """A direct connection from this host: loopback address and no proxy's forwarding header
    (a reverse proxy on the same host would otherwise make every visitor look local)."""
    if any(request.headers.get(h) for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP")):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``/metrics`` for Prometheus.

    With ``EVALHUB_METRICS_TOKEN`` set, only requests with ``Authorization: Bearer <token>``
    are answered (401 otherwise). Unset, only direct connections from loopback addresses are
    (403 otherwise).
    """
    token = getattr(settings, "EVALHUB_METRICS_TOKEN", "") or ""
    if token:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {token}".encode()):
            response = HttpResponse("A bearer token is required.\n", status=401,
                                    content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not _from_loopback(request):
        return HttpResponse("Set EVALHUB_METRICS_TOKEN to scrape metrics from another host.\n",
                            status=403, content_type="text/plain")
    # The format the scraper asks for (Accept): Prometheus text 0.0.4 by default, OpenMetrics.
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encoder(scrape_registry()), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
