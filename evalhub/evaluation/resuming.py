"""Resuming a metric job whose task messages were lost, for its three doors (the API's
``POST /api/v1/metric-jobs/<id>/resume/``, ``manage.py resume_metric_job`` and the workspace's
Resume button): one refusal, with one message and one status, for all of them."""

from __future__ import annotations

from evalhub.core.errors import EvalHubError
from evalhub.evaluation.models import MetricJob
from evalhub.evaluation.services import metric_job_resume


class MetricJobNotResumable(EvalHubError):
    """Only an unfinished job (queued, running, finalizing) is resumed: a finished one has
    nothing left to queue. The API answers 409."""

    http_status = 409
    code = "job_finished"


FINISHED_JOB_HINT = ("Resume queues again the shards of an unfinished job; to compute a "
                     "finished job again, create it again (the same run, metrics and options "
                     "make a new job).")


def metric_job_resume_or_refuse(*, job: MetricJob) -> int:
    """``metric_job_resume`` (the shards not done queued again, or the finalize step when all
    are done; the number queued), its refusal as :class:`MetricJobNotResumable`. ``job`` is
    read again afterwards, so the caller shows its state now."""
    try:
        queued = metric_job_resume(job=job)
    except EvalHubError as exc:
        raise MetricJobNotResumable(f"{exc.message} {FINISHED_JOB_HINT}",
                                    details=exc.details) from exc
    job.refresh_from_db()
    return queued
