"""Celery tasks of the core app (default queue)."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)

RESUME_STALLED_TASK = "evalhub.core.resume_stalled_work"


@shared_task(name=RESUME_STALLED_TASK, ignore_result=True)
def resume_stalled_work() -> int:
    """The periodic sweep of ``evalhub.core.recovery`` (Celery beat, every
    ``EVALHUB_STALL_SWEEP_SECONDS``); returns how many objects it resumed."""
    from evalhub.core.recovery import resume_stalled_work as sweep

    quiet_for = timedelta(seconds=settings.EVALHUB_STALLED_AFTER_SECONDS)
    try:
        return sweep(quiet_for=quiet_for).resumed
    except LookupError as exc:  # a broker that cannot say what it and its workers hold
        logger.warning("stalled work: the %s broker cannot say what its queues and workers "
                       "hold; the sweep does nothing (the embedded default resumes at start "
                       "instead)", exc)
        return 0
