"""Helpers shared by every app's Celery tasks."""

from __future__ import annotations

from typing import Any

from celery import Task
from django.db import transaction


def enqueue_on_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    """Send ``task`` once the current transaction commits.

    A worker that picks the message up before the commit would not see the rows it refers to;
    and a rolled-back transaction must not leave a task behind.
    """
    transaction.on_commit(lambda: task.delay(*args, **kwargs))
