"""Celery tasks of the runs app (default queue): thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from evalhub.runs import previews


@shared_task(
    name=previews.PREVIEWS_TASK,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def runs_make_previews(image_ids: list[int]) -> int:
    """Make the missing previews of the given images' blobs and mark the images ready
    (runs/previews.py); returns how many of those that showed none show it now."""
    return previews.images_make_previews(image_ids)
