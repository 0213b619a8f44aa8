"""Helpers shared by every app's Celery tasks."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def enqueue_on_commit(task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Send the task registered as ``task_name`` once the current transaction commits.

    A worker that picks the message up before the commit would not see the rows it refers to;
    and a rolled-back transaction must not leave a task behind. Tasks are named, not imported,
    so that services never import their app's ``tasks`` module (which imports the services):
    Celery routes by name (``CELERY_TASK_ROUTES``), and tests/config/test_task_names.py checks
    that every name sent here is registered in the worker.
    """
    from evalhub.config.celery import app

    transaction.on_commit(
        lambda: app.send_task(task_name, args=list(args), countdown=countdown))
