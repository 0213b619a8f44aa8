"""Metric jobs: creating, queueing, resuming and failing them (no torch: the web imports this).

The computation itself lives in :mod:`evalhub.evaluation.compute`, imported by gpu workers.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from evalhub.core.errors import EvalHubError
from evalhub.core.queueing import enqueue_on_commit
from evalhub.evaluation.models import (
    FINISHED_JOB_STATUSES,
    JobStatus,
    MetricJob,
    MetricShard,
    ShardKind,
    ShardStatus,
)
from evalhub.runs.models import GenerationRun, Image, ReferenceSet

logger = logging.getLogger(__name__)

#: Metrics a job can compute, in display order.
JOB_METRICS = ("fid", "kid", "clip_score", "cmmd", "lpips_diversity")
REFERENCE_METRICS = frozenset({"fid", "kid", "cmmd"})
INCEPTION_METRICS = frozenset({"fid", "kid"})
CLIP_METRICS = frozenset({"clip_score", "cmmd"})

#: Job options and their defaults (docs/metrics.md explains each).
DEFAULT_OPTIONS: dict[str, Any] = {
    "antialias": True,  # resize mode of the FID InceptionV3 (True = torchmetrics >= 1.8)
    "fid_feature": "2048",  # pool3; "64", "192", "768" pick earlier pooled layers
    "fid_allow_rank_deficient": False,
    "kid_subsets": 100,
    "kid_subset_size": 1000,
    "cmmd_estimator": "reference",
    "shard_size": 64,
}
_OPTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "antialias": bool, "fid_feature": (str, int), "fid_allow_rank_deficient": bool,
    "kid_subsets": int, "kid_subset_size": int, "cmmd_estimator": str, "shard_size": int,
    "clip_model": str, "clip_pretrained": str,
}


# --- creating jobs -----------------------------------------------------------------------------


def normalize_metrics(metrics: Iterable[str]) -> list[str]:
    """Validated, de-duplicated metric names in canonical order."""
    wanted = [str(m).strip() for m in metrics if str(m).strip()]
    if not wanted:
        raise EvalHubError("Choose at least one metric.", details=list(JOB_METRICS))
    unknown = sorted(set(wanted) - set(JOB_METRICS))
    if unknown:
        raise EvalHubError(f"Unknown metric(s): {', '.join(unknown)}.",
                           details=[f"available: {', '.join(JOB_METRICS)}"])
    return [m for m in JOB_METRICS if m in wanted]


def normalize_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Options merged over the defaults, with types and ranges checked."""
    options = dict(options or {})
    problems = []
    for key, value in options.items():
        expected = _OPTION_TYPES.get(key)
        if expected is None:
            problems.append(f"unknown option {key!r} (known: {', '.join(sorted(_OPTION_TYPES))})")
        elif expected is int and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"option {key!r} must be an integer, got {value!r}")
        elif not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            problems.append(f"option {key!r} has the wrong type: {value!r}")
    merged = {**DEFAULT_OPTIONS, **options}
    merged["fid_feature"] = str(merged["fid_feature"])
    if not problems:
        if merged["fid_feature"] not in ("64", "192", "768", "2048"):
            problems.append("fid_feature must be one of 64, 192, 768, 2048")
        if merged["cmmd_estimator"] not in ("reference", "unbiased"):
            problems.append("cmmd_estimator must be 'reference' or 'unbiased'")
        for key in ("kid_subsets", "kid_subset_size", "shard_size"):
            if merged[key] < 1:
                problems.append(f"{key} must be at least 1")
    if problems:
        raise EvalHubError("Invalid metric job options.", details=problems)
    return merged


def _digest(shas: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(shas)).encode()).hexdigest()


def _run_shard_items(images: Sequence[tuple[int, int]], size: int,
                     keep_prompts_together: bool) -> list[list[int]]:
    """Pack (image id, prompt id) rows, sorted by prompt, into shards of about ``size`` images.

    With ``keep_prompts_together`` (LPIPS diversity needs all seeds of a prompt in one place)
    a prompt's images never straddle two shards; a prompt with more than ``size`` images gets
    a shard of its own.
    """
    if not keep_prompts_together:
        ids = [image_id for image_id, _ in images]
        return [ids[i:i + size] for i in range(0, len(ids), size)]
    groups: dict[int, list[int]] = defaultdict(list)
    for image_id, prompt_id in images:
        groups[prompt_id].append(image_id)
    shards: list[list[int]] = []
    current: list[int] = []
    for group in groups.values():
        if current and len(current) + len(group) > size:
            shards.append(current)
            current = []
        current.extend(group)
    if current:
        shards.append(current)
    return shards


def metric_job_create(
    *,
    run: GenerationRun,
    metrics: Iterable[str],
    reference_set: ReferenceSet | None = None,
    options: dict[str, Any] | None = None,
    created_by: Any = None,
    enqueue: bool = True,
) -> MetricJob:
    """Create a job and queue its shards (after commit). Bad input raises EvalHubError.

    While an identical job (same run, metrics, reference set and options) is still queued or
    running, that job is returned instead of starting a second one.
    """
    metric_list = normalize_metrics(metrics)
    opts = normalize_options(options)
    needs_reference = sorted(REFERENCE_METRICS & set(metric_list))
    if needs_reference and reference_set is None:
        raise EvalHubError(f"{', '.join(needs_reference)} compare the run with real images: "
                           "choose a reference set.")
    if reference_set is not None and reference_set.project_id != run.project_id:
        raise EvalHubError("The reference set belongs to another project.")
    if not needs_reference:
        reference_set = None  # not used: do not make it part of the job's identity
    images = list(Image.objects.filter(run=run).order_by("prompt_id", "seed", "id")
                  .values_list("id", "prompt_id"))
    if not images:
        raise EvalHubError(f"Run {run.name!r} has no images: there is nothing to compute "
                           "metrics on. Generate or import its images first.")
    ref_blobs: list[tuple[int, str]] = []
    if reference_set is not None:
        ref_blobs = list(reference_set.images.order_by("id").values_list("id", "sha256"))
        if not ref_blobs:
            raise EvalHubError(f"Reference set {reference_set.name!r} has no images.")

    with transaction.atomic():
        GenerationRun.objects.select_for_update().filter(pk=run.pk).first()  # serialise creates
        existing = MetricJob.objects.filter(
            run=run, metrics=metric_list, reference_set=reference_set, options=opts,
            status__in=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FINALIZING],
        ).first()
        if existing is not None:
            return existing
        size = opts["shard_size"]
        run_shards = _run_shard_items(images, size, "lpips_diversity" in metric_list)
        ref_ids = [blob_id for blob_id, _ in ref_blobs]
        ref_shards = [ref_ids[i:i + size] for i in range(0, len(ref_ids), size)]
        job = MetricJob.objects.create(
            project_id=run.project_id, run=run, metrics=metric_list, reference_set=reference_set,
            options=opts, reference_digest=_digest(sha for _, sha in ref_blobs) if ref_blobs
            else "", shards_total=len(run_shards) + len(ref_shards), images_total=len(images),
            created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
        )
        shards = [MetricShard(job=job, index=i, kind=ShardKind.RUN, item_ids=ids)
                  for i, ids in enumerate(run_shards)]
        shards += [MetricShard(job=job, index=len(run_shards) + i, kind=ShardKind.REFERENCE,
                               item_ids=ids) for i, ids in enumerate(ref_shards)]
        MetricShard.objects.bulk_create(shards)
        if enqueue:
            _enqueue_shards(MetricShard.objects.filter(job=job).values_list("id", flat=True))
    return job


def _enqueue_shards(shard_ids: Iterable[int]) -> None:
    for shard_id in shard_ids:
        enqueue_on_commit("evalhub.evaluation.run_shard", shard_id)


def metric_job_resume(*, job: MetricJob) -> int:
    """Queue again the shards of an unfinished job that are not done (e.g. after the broker
    lost its queue); when all are done, queue the finalize step. Returns the number queued."""
    if job.finished:
        raise EvalHubError(f"Job {job.pk} is already {job.status}.")
    pending = list(job.shards.exclude(status=ShardStatus.DONE).values_list("id", flat=True))
    with transaction.atomic():
        if pending:
            _enqueue_shards(pending)
        else:
            MetricJob.objects.filter(pk=job.pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
                                     ).update(status=JobStatus.FINALIZING)
            enqueue_on_commit("evalhub.evaluation.finalize_job", job.pk)
    return len(pending) or 1


def metric_job_process_inline(*, job: MetricJob) -> MetricJob:
    """Compute every shard and the finalize step in this process (CLI ``--inline``, tests)."""
    from evalhub.evaluation.compute import metric_shard_run

    for shard_id in job.shards.order_by("index").values_list("id", flat=True):
        metric_shard_run(shard_id=shard_id)
    job.refresh_from_db()
    return job


def metric_job_fail(*, job: MetricJob, error: str) -> None:
    MetricJob.objects.filter(pk=job.pk).exclude(status__in=FINISHED_JOB_STATUSES).update(
        status=JobStatus.FAILED, error=error[:5000], finished_at=timezone.now())


