"""What the progress pages show and poll: typed snapshots of a generated run and a metric job.

Rates are measured from the job's ``started_at`` (the first batch or shard a worker took) to
now, or to ``finished_at`` once finished: ``rate = (done - done_before) / elapsed`` in items
(images) per second, and ``eta_s = (total - done) / rate`` in seconds, None until something is
done. ``done_before`` is what was done before the latest (re)start: the images a relaunched
run had made before its latest launch (``items_done_at_launch``), the images of the shards a
resumed metric job had done before its latest resume (``images_done_at_resume``). A relaunch's
or a resume's rate counts only its own images.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from evalhub.evaluation.definitions import REFERENCE_METRICS
from evalhub.evaluation.models import (
    FINISHED_JOB_STATUSES,
    MetricJob,
    ShardStatus,
    computed_as,
    computed_with,
    images_of_done_shards,
)
from evalhub.runs.models import GenerationRun, RunStatus

FINISHED_RUN_STATUSES = (RunStatus.COMPLETED, RunStatus.PARTIAL, RunStatus.FAILED)
# Failures listed on a page (the API's failures endpoint has the whole list).
MAX_LISTED_FAILURES = 100


def finished(item: GenerationRun | MetricJob) -> bool:
    """Whether a run or a metric job is in a final state (completed, partial or failed): its
    progress no longer changes, so nothing polls it. Pending, queued, running (and a job's
    finalizing) still change. The one rule of the progress JSON and of the pages that poll it."""
    if isinstance(item, MetricJob):
        return item.status in FINISHED_JOB_STATUSES
    return item.status in FINISHED_RUN_STATUSES


def unfinished_ids(items: Iterable[GenerationRun | MetricJob]) -> frozenset[int]:
    """The primary keys of the ``items`` under way (not :func:`finished`, and for a run not
    pending: one nobody launched changes only when someone launches it): the rows of a list
    page that poll their progress JSON (static/js/workspace/progress.js); empty, the page
    polls nothing."""
    return frozenset(item.pk for item in items if not finished(item)
                     and item.status != RunStatus.PENDING)


def _rate(done: int, total: int, started: datetime | None, finished: datetime | None,
          done_before: int = 0) -> tuple[float | None, float | None]:
    """(items per second, seconds left), None where not measurable yet. ``done_before`` items
    were done before ``started`` (a run launched again): the rate counts only those since."""
    if started is None or done <= done_before:
        return None, None
    elapsed = ((finished or timezone.now()) - started).total_seconds()
    if elapsed <= 0:
        return None, None
    rate = (done - done_before) / elapsed
    return rate, (max(0, total - done) / rate if finished is None else 0.0)


@dataclass(frozen=True)
class Failure:
    what: str
    reason: str


@dataclass(frozen=True)
class MetricResult:
    """A finished job's value of one metric (the summary the job keeps in ``results``) and how
    it was computed: ``reference_set`` (its name; none for a metric without one),
    ``backbone_id``, ``computed_as`` (from the summary's details) and ``computed_with``, the
    same in words (``evaluation.models.computed_with``)."""

    metric: str
    value: float | None
    std: float | None
    n_images: int | None
    uncalibrated: bool
    reference_set: str | None
    backbone_id: str
    computed_as: str
    computed_with: str


def _result(metric: str, summary: dict[str, Any], reference_set: str | None) -> MetricResult:
    # The job's reference set is the value's only for the metrics that use one, as the
    # finalize step stores them (evaluation.services._store_run_metric).
    reference = reference_set if metric in REFERENCE_METRICS else None
    backbone = str(summary.get("backbone_id") or "")
    way = computed_as(summary.get("details") if isinstance(summary.get("details"), dict)
                      else None)
    return MetricResult(metric=metric, value=summary.get("value"), std=summary.get("std"),
                        n_images=summary.get("n_images"),
                        uncalibrated=bool(summary.get("uncalibrated")),
                        reference_set=reference, backbone_id=backbone, computed_as=way,
                        computed_with=computed_with(reference_set=reference,
                                                    backbone_id=backbone, computed_as=way))


def _results(results: dict[str, Any], reference_set: str | None) -> list[MetricResult]:
    return [_result(metric, summary, reference_set)
            for metric, summary in sorted(results.items()) if isinstance(summary, dict)]


@dataclass(frozen=True)
class Progress:
    """One job's state. ``done``/``total`` count images for a run and shards for a metric job;
    ``images_done``/``images_total`` count images (for a metric job: run and reference images
    of the shards done)."""

    kind: str
    status: str
    status_label: str
    finished: bool
    done: int
    total: int
    images_done: int
    images_total: int
    failed: int
    images_per_s: float | None
    eta_s: float | None
    error: str
    failures: list[Failure] = field(default_factory=list)
    results: list[MetricResult] = field(default_factory=list)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else (100 if self.finished else 0)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "percent": self.percent}


def run_progress(*, run: GenerationRun) -> Progress:
    """A generated (or imported) run: images stored / items planned, failures with reasons."""
    run.refresh_from_db(fields=["status", "items_total", "items_done", "items_failed", "error",
                                "started_at", "finished_at", "items_done_at_launch"])
    over = finished(run)
    # Measured over the latest launch (started_at is its first batch's), from what it made.
    rate, eta = _rate(run.items_done, run.items_total, run.started_at,
                      run.finished_at if over else None, run.items_done_at_launch)
    rows = (run.failures.select_related("prompt").order_by("prompt__position", "seed")
            [:MAX_LISTED_FAILURES])
    return Progress(
        kind="run", status=run.status, status_label=RunStatus(run.status).label,
        finished=over, done=run.items_done, total=run.items_total,
        images_done=run.items_done, images_total=run.items_total, failed=run.items_failed,
        images_per_s=rate, eta_s=eta, error=run.error,
        failures=[Failure(what=f"prompt {row.prompt.position + 1} “{row.prompt.text[:80]}”, "
                               f"seed {row.seed} ({row.attempts} attempt"
                               f"{'s' if row.attempts != 1 else ''})", reason=row.error)
                  for row in rows],
    )


def metric_job_progress(*, job: MetricJob) -> Progress:
    """A metric job: shards done / total, images (or videos) of the shards done, per-metric
    and per-shard failure reasons, and the results once finalized."""
    job.refresh_from_db(fields=["status", "shards_total", "shards_done", "images_total",
                                "error", "metric_errors", "results", "started_at",
                                "finished_at", "images_done_at_resume"])
    shards = list(job.shards.order_by("index").values_list("index", "kind", "status",
                                                              "item_ids", "error"))
    images_total = sum(len(ids) for _, _, _, ids, _ in shards)
    images_done = images_of_done_shards((status, ids) for _, _, status, ids, _ in shards)
    over = finished(job)
    # Measured since the latest resume (started_at is its first shard's), from the shards
    # done since.
    rate, eta = _rate(images_done, images_total, job.started_at,
                      job.finished_at if over else None, job.images_done_at_resume)
    failures = [Failure(what=metric, reason=str(reason))
                for metric, reason in sorted(job.metric_errors.items())]
    noun = job.run.outputs_noun  # a video run's shards hold videos (and reference videos)
    failures += [Failure(what=f"shard {index + 1} ({kind} {noun})", reason=error)
                 for index, kind, status, _, error in shards
                 if error and (status == ShardStatus.FAILED or not over)]
    return Progress(
        kind="metric_job", status=job.status, status_label=job.get_status_display(),
        finished=over, done=job.shards_done, total=job.shards_total,
        images_done=images_done, images_total=images_total,
        failed=sum(1 for _, _, status, _, _ in shards if status == ShardStatus.FAILED),
        images_per_s=rate, eta_s=eta,
        # A partial job's error is its failed metrics' messages joined: listed once, below.
        error=None if job.metric_errors else job.error,
        failures=failures[:MAX_LISTED_FAILURES],
        results=(_results(job.results, job.reference_set.name if job.reference_set_id else None)
                 if over else []),
    )
