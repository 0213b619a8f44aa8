"""Helpers shared by every app's Celery tasks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from kombu.exceptions import OperationalError as BrokerUnavailable

from evalhub.core.errors import EvalHubError
from evalhub.core.pagination import pk_pages

logger = logging.getLogger(__name__)


class QueueUnavailable(EvalHubError):
    """The broker did not take a task sent after a commit: what the request saved stays
    saved, and the work the task would have done is not queued (503, ``Retry-After``)."""

    http_status = 503
    code = "queue_unavailable"


def enqueue_on_commit(task_name: str, *args: Any, countdown: float | None = None,
                      not_queued: Callable[[], None] | None = None) -> None:
    """Send the task registered as ``task_name`` once the current transaction commits.

    A worker that picks the message up before the commit would not see the rows it refers to;
    and a rolled-back transaction must not leave a task behind. Tasks are named, not imported,
    so that services never import their app's ``tasks`` module (which imports the services):
    Celery routes by name (``CELERY_TASK_ROUTES``), and tests/config/test_task_names.py checks
    that every name sent here is registered in the worker.

    When the broker is down the send raises :class:`QueueUnavailable` (Celery's own retries
    spent) where a Celery error was a 500 that left, e.g., a run "queued" with nothing queued;
    ``not_queued`` is called first, to record on the saved rows that their work is not queued.
    """
    from evalhub.config.celery import app

    def send() -> None:
        try:
            app.send_task(task_name, args=list(args), countdown=countdown)
        except BrokerUnavailable as exc:
            logger.error("could not queue %s%r: %s", task_name, args, exc)
            if not_queued is not None:
                not_queued()
            raise QueueUnavailable(
                "The task queue did not answer: what you did is saved, but its work is not "
                "queued yet. Try again in a minute; if it goes on, the operator should check "
                "the broker (docs/operations.md).") from exc

    transaction.on_commit(send)


def enqueue_batches(task_name: str, ids: Sequence[int], per_task: int) -> int:
    """Send ``task_name`` once per ``per_task`` ids of ``ids`` (in their order), each after
    the current transaction commits (:func:`enqueue_on_commit`); returns how many tasks.

    Work that takes seconds to minutes per object (a 16K pyramid, a video rendition) goes one
    object per task, so that every worker of the queue takes a share of a large import: a list
    of a whole import in one message is built by one worker, one object after another, however
    many workers an operator starts. Cheap work goes in batches, so a message's id list stays
    short."""
    if per_task < 1:
        raise ValueError("per_task must be at least 1")
    ids = list(ids)
    for start in range(0, len(ids), per_task):
        enqueue_on_commit(task_name, ids[start:start + per_task])
    return -(-len(ids) // per_task)


@dataclass(frozen=True)
class Queued:
    """What :func:`enqueue_pk_pages` sent: ``items`` ids in ``tasks`` tasks."""

    items: int
    tasks: int


def enqueue_pk_pages(task_name: str, ids: QuerySet, per_task: int) -> Queued:
    """Send ``task_name`` once per ``per_task`` primary keys of ``ids`` (``values_list("pk",
    flat=True)`` ordered by pk), walked in keyset pages (core/pagination.py ``pk_pages``), so
    the ids of a large installation are never held whole; outside a transaction each task is
    sent at once. The repair and upgrade commands that queue work over a whole table."""
    if per_task < 1:
        raise ValueError("per_task must be at least 1")
    items = tasks = 0
    for page in pk_pages(ids, per_task):
        enqueue_on_commit(task_name, page)
        items += len(page)
        tasks += 1
    return Queued(items=items, tasks=tasks)
