"""Celery tasks for generation: thin wrappers that load rows and call services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from evalhub.generation import services
from evalhub.runs.models import GenerationRun
from generators import GeneratorError


@shared_task(name=services.GENERATE_BATCH_TASK, autoretry_for=(OperationalError,),
             max_retries=5, retry_backoff=True)
def generate_batch(run_id: int, start: int, stop: int) -> int:
    run = GenerationRun.objects.select_related("checkpoint__model").filter(pk=run_id).first()
    if run is None:  # deleted meanwhile: nothing to do
        return 0
    try:
        return services.generation_run_batch(run=run, start=start, stop=stop)
    except GeneratorError as exc:
        # Configuration errors (unknown generator, missing weights) will not heal by retrying.
        services.generation_mark_failed(run=run, error=str(exc))
        return 0
