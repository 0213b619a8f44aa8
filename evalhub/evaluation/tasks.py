"""Celery tasks for metric jobs (gpu queue): thin wrappers around the services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from evalhub.evaluation.services import metric_job_finalize, metric_shard_run


# The services import the torch side (compute.py) only when a shard or a finalize step runs:
# web processes that only send these tasks never load it.
@shared_task(name="evalhub.evaluation.run_shard", autoretry_for=(OperationalError,),
             max_retries=5, retry_backoff=True)
def run_shard(shard_id: int) -> None:
    """Compute one shard; the shard that completes the job also finalizes it."""
    metric_shard_run(shard_id=shard_id)


@shared_task(name="evalhub.evaluation.finalize_job", autoretry_for=(OperationalError,),
             max_retries=5, retry_backoff=True)
def finalize_job(job_id: int) -> None:
    """Finalize a job whose shards are all done (used by ``metric_job_resume``)."""
    metric_job_finalize(job_id=job_id)
