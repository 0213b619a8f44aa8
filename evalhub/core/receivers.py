"""Signal receivers of operations: vote counter, task metrics, task ids in log lines.

- :func:`connect_vote_counter` counts ``campaigns.signals.vote_recorded`` and
  ``leases_expired`` (web processes;
  :class:`evalhub.core.metrics.MetricsMiddleware` connects it when it is loaded).
- :func:`connect_task_receivers` (``evalhub/config/celery.py``, every process): the sender
  stamps the current request id on each task message; the worker measures each task, counts
  its failures and sets the task id, task name and originating request id for its log lines.
- :func:`serve_worker_metrics` serves a worker's own ``/metrics`` when
  ``EVALHUB_WORKER_METRICS_ADDR`` is set (workers on other hosts than the web).
- :func:`configure_worker_logging` replaces Celery's own logging set-up by the settings'
  ``LOGGING`` when ``EVALHUB_LOG_JSON`` is on, so worker lines are JSON too.
"""

from __future__ import annotations

import logging.config
import os
import sys
import time
import warnings
from contextvars import Token
from typing import Any

from celery.signals import (
    before_task_publish,
    celeryd_after_setup,
    setup_logging,
    task_failure,
    task_postrun,
    task_prerun,
    worker_ready,
)

from evalhub.core.logging import JsonFormatter, request_id_var, task_id_var, task_name_var
from evalhub.core.metrics import (
    LEASES_EXPIRED,
    TASK_DURATION,
    TASK_FAILURES,
    VOTES_RECORDED,
)

# Message header that carries the id of the request that sent a task.
REQUEST_ID_TASK_HEADER = "evalhub_request_id"

# Per task id while it runs in this process: its start (perf_counter seconds) and the tokens
# that restore the log context afterwards. Prefork children run one task at a time; the
# threads pool runs several, each in its own thread and context.
_running: dict[str, tuple[float, tuple[Token, ...]]] = {}


def count_vote(sender: Any, kind: str = "vote", **kwargs: Any) -> None:
    if kind == "vote":  # an undo retracts a vote: it is not a new one
        VOTES_RECORDED.inc()


def count_expired_leases(sender: Any, count: int = 0, **kwargs: Any) -> None:
    LEASES_EXPIRED.inc(count)


def connect_vote_counter() -> None:
    """Count every ``vote_recorded`` signal in ``evalhub_votes_recorded_total`` and every
    ``leases_expired`` in ``evalhub_leases_expired_total`` (once)."""
    from evalhub.campaigns.signals import leases_expired, vote_recorded

    vote_recorded.connect(count_vote, dispatch_uid="core.metrics.count_vote")
    leases_expired.connect(count_expired_leases, dispatch_uid="core.metrics.count_expired")


def stamp_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Sender side: carry the current request id (if any) in the task's message headers."""
    request_id = request_id_var.get()
    if request_id is not None and headers is not None:
        headers.setdefault(REQUEST_ID_TASK_HEADER, request_id)


def task_started(task_id: str, task: Any, **kwargs: Any) -> None:
    """Worker side, before the task body: start its clock and its log context."""
    tokens = (task_id_var.set(task_id), task_name_var.set(task.name),
              request_id_var.set(getattr(task.request, REQUEST_ID_TASK_HEADER, None)))
    _running[task_id] = (time.perf_counter(), tokens)


def task_finished(task_id: str, task: Any, state: str | None = None, **kwargs: Any) -> None:
    """Worker side, after the task body (any outcome): observe its duration, end its context."""
    started = _running.pop(task_id, None)
    if started is None:
        return
    start, tokens = started
    TASK_DURATION.labels(task.name, state or "UNKNOWN").observe(time.perf_counter() - start)
    for var, token in zip((task_id_var, task_name_var, request_id_var), tokens, strict=True):
        try:
            var.reset(token)
        except ValueError:  # set in another context (should not happen): just clear it
            var.set(None)


def task_failed(sender: Any = None, exception: BaseException | None = None,
                **kwargs: Any) -> None:
    name = getattr(sender, "name", None) or "unknown"
    TASK_FAILURES.labels(name, type(exception).__name__ if exception else "unknown").inc()


def configure_worker_logging(loglevel: Any = None, **kwargs: Any) -> None:
    """Celery's ``setup_logging``: apply the settings' ``LOGGING`` (JSON lines) instead of
    Celery's handlers. The root level is the more verbose of ``LOG_LEVEL`` and the worker's
    ``--loglevel``: Celery passes ``WARNING`` when no ``--loglevel`` is given, which alone
    would hide every INFO line a ``LOG_LEVEL=INFO`` deployment expects."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    logging.captureWarnings(True)  # Python's warnings (Celery's as root, say) as log lines too
    if not loglevel:
        return
    root = logging.getLogger()
    # Celery passes a number (its ``mlevel``); a name is accepted as logging accepts it.
    level = loglevel if isinstance(loglevel, int) else logging.getLevelName(str(loglevel).upper())
    if isinstance(level, int) and level < root.level:
        root.setLevel(level)


def worker_started_line(sender: str, instance: Any, conf: Any = None, **kwargs: Any) -> None:
    """Celery's ``celeryd_after_setup`` with JSON logs: the worker's start-up banner (ASCII
    art and a configuration dump printed to stdout, the one non-JSON output left) becomes one
    log line with what an operator reads from it."""
    instance.quiet = True
    queues = sorted(instance.app.amqp.queues.consume_from or ())
    logging.getLogger("evalhub.worker").info(
        "worker %s starting", sender,
        extra={"hostname": sender, "queues": queues, "concurrency": instance.concurrency,
               "pool": getattr(instance.pool_cls, "__module__", str(instance.pool_cls))})


def json_say(message: str, stream: Any = None, *, logger: str = "celery.worker") -> None:
    """Celery's ``safe_say`` (the shutdown notices its signal handlers print, such as
    ``worker: Warm shutdown (MainProcess)``) as a JSON line like every other.

    Formatted by :class:`~evalhub.core.logging.JsonFormatter` and written straight to the
    stream, as Celery writes its own: a logging handler takes a lock, which a signal handler
    must not wait on."""
    record = logging.LogRecord(logger, logging.WARNING, __file__, 0, message, None, None)
    target = stream or sys.__stderr__
    target.write(JsonFormatter().format(record) + "\n")
    target.flush()


def json_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
    """``warnings.showwarning`` before the worker's logging exists (Celery's warning that it
    runs as root comes then): one JSON line, logger ``py.warnings`` as after start-up."""
    json_say(f"{filename}:{lineno}: {category.__name__}: {message}", file,
             logger="py.warnings")


def serve_worker_metrics(**kwargs: Any) -> None:
    """Celery's ``worker_ready`` (the worker's main process, once its pool has started, so
    the pool processes do not inherit the listening socket): with
    ``EVALHUB_WORKER_METRICS_ADDR=host:port``, serve ``/metrics`` there for Prometheus.

    Every process of the worker writes its counters to ``PROMETHEUS_MULTIPROC_DIR`` and this
    server sums them; without that folder it shows only the main process, which runs no task
    under the prefork pool. For workers on hosts whose counters the web's ``/metrics`` cannot
    read. No authentication: bind it to an address only Prometheus reaches.
    """
    from django.conf import settings
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    address = getattr(settings, "EVALHUB_WORKER_METRICS_ADDR", "") or ""
    if not address:
        return
    host, _, port = address.rpartition(":")
    registry = None
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        logging.getLogger(__name__).warning(
            "EVALHUB_WORKER_METRICS_ADDR without PROMETHEUS_MULTIPROC_DIR: only the worker's "
            "main process is counted, not the pool processes that run the tasks")
    server_kwargs = {"registry": registry} if registry is not None else {}
    start_http_server(int(port), addr=host or "127.0.0.1", **server_kwargs)


def connect_task_receivers(*, json_logs: bool) -> None:
    """Connect the Celery receivers (idempotent). ``json_logs``: also take over the worker's
    logging set-up (Celery then leaves logging alone)."""
    before_task_publish.connect(stamp_request_id, dispatch_uid="core.stamp_request_id")
    task_prerun.connect(task_started, dispatch_uid="core.task_started")
    task_postrun.connect(task_finished, dispatch_uid="core.task_finished")
    task_failure.connect(task_failed, dispatch_uid="core.task_failed")
    worker_ready.connect(serve_worker_metrics, dispatch_uid="core.serve_worker_metrics")
    if json_logs:
        from celery.apps import worker

        setup_logging.connect(configure_worker_logging, dispatch_uid="core.worker_logging")
        celeryd_after_setup.connect(worker_started_line, dispatch_uid="core.worker_started")
        worker.safe_say = json_say
        warnings.showwarning = json_warning
