"""Metric jobs: creating, queueing, resuming and failing them, running their shards and the
finalize step, and storing the metric values they produce.

Life of a job:

1. :func:`metric_job_create` checks the input (images exist, reference set given when needed,
   in the run's project and of the kind the metrics compare with: images for FID/KID/CMMD,
   videos for FVD; options valid), splits the run's images (and the reference set's images
   or videos) into shards and queues one ``evalhub.evaluation.run_shard`` task per shard
   (sent by name after commit: services never import tasks). Over a run still generating,
   the job is created ``waiting`` and this step happens when the run closes
   (:func:`metric_jobs_start_waiting_for`, called by the generation services).
2. :func:`metric_shard_run` (any gpu worker, in parallel) has :mod:`~evalhub.evaluation.compute`
   get each image's (video's) features through the database feature cache (only cache misses
   are computed) and stores the shard's partial FID or FVD statistics (``GaussianStats`` sums
   of InceptionV3 or I3D features, which merge exactly), per-image CLIP-scores as
   ImageMetric rows and per-prompt LPIPS diversities in the shard. A metric whose work fails
   in a shard is recorded in the shard's payload (``compute.metric_errors``) and the shard's
   other metrics are stored. A redelivered shard redoes only itself; every write is an
   upsert, so doing a shard twice changes nothing.
3. The shard that completes the job's last missing shard claims the finalize step under a row
   lock on the job (status ``running`` -> ``finalizing``, once) and runs
   :func:`metric_job_finalize`: it merges the partial statistics, reads KID/CMMD features back
   from the cache and writes RunMetric and PromptMetric rows. A metric that cannot be computed
   (e.g. too few reference images for FID, or failed in a shard) is reported in
   ``metric_errors`` while the others are still written (status ``partial``).

Web processes import this module, so torch stays out of it: the worker-side functions
(:func:`metric_shard_run`, :func:`metric_job_finalize`) import ``compute`` when they run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from evalhub.core.errors import EvalHubError
from evalhub.core.queueing import QueueUnavailable, enqueue_on_commit
from evalhub.evaluation import selectors
from evalhub.evaluation.definitions import (
    IMAGE_REFERENCE_METRICS,
    REFERENCE_METRICS,
    VIDEO_METRIC_OPTIONS,
    VIDEO_METRICS,
    VIDEO_OPTION_DEFAULTS,
    VIDEO_REFERENCE_METRICS,
    MetricComputed,
    MetricNotComputed,
    Provenance,
    job_options,
    normalize_metrics,
    normalize_options,
)
from evalhub.evaluation.feature_cache import DatabaseFeatureCache
from evalhub.evaluation.models import (
    FINISHED_JOB_STATUSES,
    ImageMetric,
    JobStatus,
    MetricJob,
    MetricName,
    MetricShard,
    PromptMetric,
    ReferenceStats,
    RunMetric,
    ShardKind,
    ShardStatus,
    computed_as,
)
from evalhub.projects.references import check_same_project
from evalhub.projects.selectors import SCIENCE_ROLES, role_in_project
from evalhub.runs.models import (
    GENERATING_RUN_STATUSES,
    GenerationRun,
    Image,
    MediaKind,
    ReferenceSet,
)

if TYPE_CHECKING:
    from metrics.gaussian import GaussianStats

logger = logging.getLogger(__name__)

RUN_SHARD_TASK = "evalhub.evaluation.run_shard"
FINALIZE_JOB_TASK = "evalhub.evaluation.finalize_job"


# --- creating, resuming, failing jobs ----------------------------------------------------------


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


def _require_science_role(user: AbstractBaseUser | AnonymousUser | None, project_id: int) -> None:
    """A signed-in caller must be an owner or scientist of the project (CLI callers pass no
    user). The API checks the same first, answering 404/403; this guards every other caller."""
    if user is None or not user.is_authenticated:
        return
    if role_in_project(user=user, project_id=project_id) not in SCIENCE_ROLES:
        raise PermissionDenied("Only the project's owners and scientists may compute metrics.")


def metric_job_create(
    *,
    run: GenerationRun,
    metrics: Iterable[str],
    reference_set: ReferenceSet | None = None,
    options: dict[str, Any] | None = None,
    created_by: AbstractBaseUser | AnonymousUser | None = None,
    enqueue: bool = True,
) -> MetricJob:
    """Create a job and queue its shards (after commit). Bad input raises EvalHubError; a
    ``created_by`` who is not an owner or scientist of the run's project, PermissionDenied.

    Over a run that is still generating the job is created ``waiting``, without shards: its
    metrics must describe the whole run, not the images made so far. It starts when the run
    closes (:func:`metric_jobs_start_waiting_for`), and the checks that need the run's
    outputs (outputs there, long enough for FVD; the kind the metrics measure, again) are
    made then: a start they refuse fails the job with their message. ``enqueue=False`` (the
    CLI's ``--inline``, which computes here and now) refuses such a run instead.

    While an identical job (same run, metrics, reference set and options) is unfinished, that
    job is returned instead of starting a second one; when it is marked ``not_queued`` (its
    shards never reached the task queue: the broker was down), they are queued now, as
    :func:`metric_job_resume` queues them, so "try again" does what it says. A broker that
    does not take them raises :class:`QueueUnavailable` naming the job and how to resume it,
    and the job is marked ``not_queued`` with an ``error`` that says the same
    (:func:`_not_queued`).
    """
    _require_science_role(created_by, run.project_id)
    metric_list = normalize_metrics(metrics)
    opts = normalize_options(options, metric_list)
    # The shards are sent when this transaction commits, at the end of the ``with`` below
    # (or of the caller's own transaction, e.g. a workspace form's, which says what was saved).
    job_id: int | None = None
    with _refusal_names_job(lambda: job_id), transaction.atomic():
        # Under the run's lock, which the batch that closes the run waits for: a job created
        # ``waiting`` is seen by that batch's start of the waiting jobs, and a run seen closed
        # here is closed (its start of waiting jobs is over). Its status is read here, not
        # taken from the caller's copy, which may be older than a launch.
        run = GenerationRun.objects.select_for_update().get(pk=run.pk)
        generating = run.status in GENERATING_RUN_STATUSES
        # The run's kind first (a reference set would not help): a run still generating has
        # the kind its generator declares (runs.services._generator_media_kind). A stored
        # video can turn an image run into a video run, never back: what passes here still
        # does when the run closes (the start checks it again).
        _check_media_kind(run, metric_list)
        check_same_project(run.project_id, reference_set=reference_set)
        reference_set = _job_reference_set(run, metric_list, reference_set)
        ref_blobs = _reference_blobs(reference_set)
        existing = MetricJob.objects.filter(
            run=run, metrics=metric_list, reference_set=reference_set, options=opts,
        ).exclude(status__in=FINISHED_JOB_STATUSES).first()
        if existing is not None:
            job_id = existing.pk
            # Only a job marked not queued: the shards of any other one are on the queue or
            # done, and sending them again would have every create compute them twice.
            if enqueue and existing.not_queued:
                _queue_not_done(existing)
                existing.refresh_from_db()
            return existing
        if generating and not enqueue:
            raise EvalHubError(
                f"Run {run.name!r} is still generating ({run.items_done} of {run.items_total} "
                "items): its metrics cannot be computed here until it has finished. Without "
                "--inline the job waits for the run and the workers compute it then.")
        images = [] if generating else _run_images(run, metric_list, reference_set, opts)
        job = MetricJob.objects.create(
            project_id=run.project_id, run=run, metrics=metric_list, reference_set=reference_set,
            options=opts, status=JobStatus.WAITING if generating else JobStatus.QUEUED,
            created_by=created_by if created_by is not None and created_by.is_authenticated
            else None,
        )
        job_id = job.pk
        if not generating:
            _make_shards(job, images, ref_blobs, enqueue=enqueue)
    return job


def _job_reference_set(run: GenerationRun, metric_list: Sequence[str],
                       reference_set: ReferenceSet | None) -> ReferenceSet | None:
    """The job's reference set: None when no metric compares with one (it is then no part of
    the job's identity); refused when one is needed and missing, or of the wrong kind."""
    needs_reference = sorted(REFERENCE_METRICS & set(metric_list))
    if needs_reference and reference_set is None:
        verb = "compares" if len(needs_reference) == 1 else "compare"
        raise EvalHubError(f"{', '.join(needs_reference)} {verb} the run with real "
                           f"{run.outputs_noun}: choose a reference set.")
    if not needs_reference:
        return None
    _check_reference_kind(metric_list, reference_set)
    return reference_set


def _reference_blobs(reference_set: ReferenceSet | None) -> list[tuple[int, str]]:
    """(id, sha256) of the reference set's images or videos, in id order; refused empty."""
    if reference_set is None:
        return []
    videos = reference_set.media_kind == MediaKind.VIDEO
    held = reference_set.videos if videos else reference_set.images
    ref_blobs = list(held.order_by("id").values_list("id", "sha256"))
    if not ref_blobs:
        raise EvalHubError(f"Reference set {reference_set.name!r} has no "
                           f"{'videos' if videos else 'images'}.")
    return ref_blobs


def _run_images(run: GenerationRun, metric_list: Sequence[str],
                reference_set: ReferenceSet | None, opts: dict[str, Any]
                ) -> list[tuple[int, int]]:
    """(image id, prompt id) of the run's outputs, after the checks that need them: outputs
    there, long enough for FVD (their kind is checked first, :func:`_check_media_kind`)."""
    images = list(Image.objects.filter(run=run).order_by("prompt_id", "seed", "id")
                  .values_list("id", "prompt_id"))
    if not images:
        raise EvalHubError(f"Run {run.name!r} has no images: there is nothing to compute "
                           "metrics on. Generate or import its images first.")
    if VIDEO_REFERENCE_METRICS & set(metric_list):
        _check_clip_lengths(run, reference_set, {**VIDEO_OPTION_DEFAULTS, **opts})
    return images


def _check_media_kind(run: GenerationRun, metric_list: Sequence[str]) -> None:
    video_metrics = sorted((VIDEO_METRICS | VIDEO_REFERENCE_METRICS) & set(metric_list))
    if video_metrics and run.media_kind != MediaKind.VIDEO:
        verb = "measures" if len(video_metrics) == 1 else "measure"
        raise EvalHubError(f"{', '.join(video_metrics)} {verb} videos: run {run.name!r} has "
                           "images.")


def _make_shards(job: MetricJob, images: Sequence[tuple[int, int]],
                 ref_blobs: Sequence[tuple[int, str]], *, enqueue: bool) -> None:
    """Split the run's outputs and the reference set's into the job's shards, and queue them
    (after commit) when ``enqueue``; call it inside a transaction."""
    size = job.options["shard_size"]
    run_shards = _run_shard_items(images, size, "lpips_diversity" in job.metrics)
    ref_ids = [blob_id for blob_id, _ in ref_blobs]
    ref_shards = [ref_ids[i:i + size] for i in range(0, len(ref_ids), size)]
    job.shards_total = len(run_shards) + len(ref_shards)
    job.images_total = len(images)
    job.reference_digest = _digest(sha for _, sha in ref_blobs) if ref_blobs else ""
    MetricJob.objects.filter(pk=job.pk).update(
        shards_total=job.shards_total, images_total=job.images_total,
        reference_digest=job.reference_digest)
    shards = [MetricShard(job=job, index=i, kind=ShardKind.RUN, item_ids=ids)
              for i, ids in enumerate(run_shards)]
    shards += [MetricShard(job=job, index=len(run_shards) + i, kind=ShardKind.REFERENCE,
                           item_ids=ids) for i, ids in enumerate(ref_shards)]
    MetricShard.objects.bulk_create(shards)
    if enqueue:
        _enqueue_shards(job.pk, MetricShard.objects.filter(job=job)
                        .values_list("id", flat=True))


def metric_jobs_start_waiting_for(*, run: GenerationRun) -> int:
    """Start the jobs waiting for ``run`` (created while it was generating), now that it is
    closed; returns how many started (queued their shards; a start the run's outputs refuse
    fails its job instead). Called when the run closes, and again when a closed run is
    launched again (each start skips a job started already)."""
    waiting = MetricJob.objects.filter(run=run, status=JobStatus.WAITING).order_by("pk")
    return sum(bool(_metric_job_start(job_id))
               for job_id in waiting.values_list("pk", flat=True))


def _metric_job_start(job_id: int) -> int | None:
    """Make and queue the shards of a ``waiting`` job whose run is closed; returns how many
    were queued, 0 when the job keeps waiting (its run generates again), None when it is not
    waiting (started already, deleted). A check that needs the run's outputs and refuses them
    fails the job with its message: nothing would ever start it otherwise."""
    with _refusal_names_job(lambda: job_id), transaction.atomic():
        job = (MetricJob.objects.select_for_update(of=("self",))
               .select_related("run", "reference_set")
               .filter(pk=job_id, status=JobStatus.WAITING).first())
        if job is None:
            return None
        run = job.run
        if run.status in GENERATING_RUN_STATUSES:
            return 0
        try:
            _check_media_kind(run, job.metrics)
            reference_set = _job_reference_set(run, job.metrics, job.reference_set)
            ref_blobs = _reference_blobs(reference_set)
            images = _run_images(run, job.metrics, reference_set, job.options)
        except EvalHubError as exc:
            MetricJob.objects.filter(pk=job.pk).update(
                status=JobStatus.FAILED, finished_at=timezone.now(),
                error=f"Not started when run {run.name!r} finished ({run.status}): {exc}"[:5000])
            return 0
        MetricJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
        _make_shards(job, images, ref_blobs, enqueue=True)
        return job.shards_total


def _check_reference_kind(metric_list: Sequence[str], reference_set: ReferenceSet | None
                          ) -> None:
    """FID, KID and CMMD compare with a set of images, FVD with a set of videos; a job has one
    reference set, so it cannot ask for both kinds."""
    wanted = set(metric_list)
    image_metrics = sorted(IMAGE_REFERENCE_METRICS & wanted)
    video_metrics = sorted(VIDEO_REFERENCE_METRICS & wanted)
    if image_metrics and video_metrics:
        raise EvalHubError(
            f"{', '.join(image_metrics)} compare with a reference set of images and "
            f"{', '.join(video_metrics)} with a reference set of videos: a job has one "
            "reference set, so create one job for each.")
    if reference_set is None:
        return
    if video_metrics and reference_set.media_kind != MediaKind.VIDEO:
        raise EvalHubError(
            f"{', '.join(video_metrics)} compare the run's videos with real videos: reference "
            f"set {reference_set.name!r} holds images. Choose a reference set of videos.")
    if image_metrics and reference_set.media_kind == MediaKind.VIDEO:
        raise EvalHubError(
            f"{', '.join(image_metrics)} compare the run's images with real images: reference "
            f"set {reference_set.name!r} holds videos (FVD compares with videos).")


def _check_clip_lengths(run: GenerationRun, reference_set: ReferenceSet | None,
                        opts: dict[str, Any]) -> None:
    """FVD reads one clip of ``fvd_clip_frames`` frames per video: every video of the run and
    of the reference set needs that many (their frame counts are stored at import)."""
    frames = int(opts["fvd_clip_frames"])
    problems = []
    short = Image.objects.filter(run=run, video__frame_count__lt=frames).count()
    if short:
        problems.append(f"run {run.name!r}: {short} video(s) shorter than {frames} frames")
    if reference_set is not None:
        short = reference_set.videos.filter(frame_count__lt=frames).count()
        if short:
            problems.append(f"reference set {reference_set.name!r}: {short} video(s) shorter "
                            f"than {frames} frames")
    if problems:
        raise EvalHubError(
            f"FVD reads the first {frames} frames of every video (option fvd_clip_frames, at "
            "least 9); some videos are shorter.", details=problems)


def _how_to_resume(job_id: int) -> str:
    return (f"manage.py resume_metric_job {job_id}, POST /api/v1/metric-jobs/{job_id}/resume/ "
            "or the Resume button of its page")


def _not_queued(job_id: int) -> None:
    """The broker did not take the job's work: mark it ``not_queued`` (what
    :func:`metric_job_create` looks for before it queues an existing job's shards again) and
    say so in its ``error``, with how to queue it once the broker is back (pages and the API
    show that text; no code keys on its wording). The job stays unfinished (``queued``),
    unlike a run, which is marked failed: a run is launched again, but a finished job cannot
    be resumed, and resuming is what queues its shards again (a job finished meanwhile keeps
    its outcome)."""
    MetricJob.objects.filter(pk=job_id).exclude(status__in=FINISHED_JOB_STATUSES).update(
        not_queued=True,
        error="Its shards could not be queued (the task queue did not answer): no worker is "
              f"computing them. Once the queue is back, resume it ({_how_to_resume(job_id)}); "
              "creating the same job again queues them too.")


@contextmanager
def _refusal_names_job(job_id: Callable[[], int | None]) -> Iterator[None]:
    """Turn the broker's refusal (:class:`QueueUnavailable`, raised when the transaction that
    queued the job's work commits) into one that names the job and how to resume it; what
    happened is on the job's row already (:func:`_not_queued`)."""
    try:
        yield
    except QueueUnavailable as exc:
        pk = job_id()
        if pk is None:
            raise
        raise QueueUnavailable(
            f"Metric job {pk} is saved, but its shards are not queued: the task queue did not "
            f"answer. Try again in a minute: {_how_to_resume(pk)}. If it goes on, the operator "
            "should check the broker (docs/operations.md).") from exc


def _enqueue_shards(job_id: int, shard_ids: Iterable[int]) -> None:
    for shard_id in shard_ids:
        enqueue_on_commit(RUN_SHARD_TASK, shard_id, not_queued=lambda: _not_queued(job_id))


class MetricJobNotResumable(EvalHubError):
    """Only an unfinished job (waiting, queued, running, finalizing) is resumed: a finished one has
    nothing left to queue. The API answers 409."""

    http_status = 409
    code = "job_finished"


def metric_job_resume(*, job: MetricJob) -> int:
    """Queue again the shards of an unfinished job that are not done (e.g. after the broker
    lost its queue); when all are done, queue the finalize step. Returns the number queued;
    ``job`` is read again afterwards, so the caller (the API's resume, ``manage.py
    resume_metric_job``, the job page's button) shows its state now.

    Queueing shards starts the job's time again: ``started_at`` is cleared (the first shard a
    worker takes sets it, as at the start) and ``images_done_at_resume`` records the images of
    the shards done, so its images per second count only those done since the resume
    (``workspace.progress.metric_job_progress``), not the idle time before it.

    A ``waiting`` job is started when its run is closed (its start was lost: a worker
    killed as the run closed) and otherwise keeps waiting (0 queued).

    A broker that does not take them raises :class:`QueueUnavailable` naming the job, and its
    ``not_queued`` mark and ``error`` say so until a resume (or a create of the same job)
    queues them."""
    with _refusal_names_job(lambda: job.pk), transaction.atomic():
        queued = _queue_not_done(job)
        if queued is None:
            status = MetricJob.objects.filter(pk=job.pk).values_list("status", flat=True).first()
            raise MetricJobNotResumable(
                f"Job {job.pk} is already {status or 'deleted'}. Resume queues again the "
                "shards of an unfinished job; to compute a finished job again, create it again "
                "(the same run, metrics and options make a new job).")
    job.refresh_from_db()
    return queued


def _queue_not_done(job: MetricJob) -> int | None:
    """Queue (after commit) the shards of ``job`` not done, or its finalize step when all are
    done, and clear its ``not_queued`` mark and its ``error``; returns how many tasks, or None
    (nothing queued) when the job is finished or deleted. The one way a resume and a create
    that finds a job marked ``not_queued`` send its work; call it inside a transaction."""
    # Under the job's lock, which a shard holds while it is stored (metric_shard_run): a shard
    # stored meanwhile is either done here or done since, never both nor neither, and a job
    # finished meanwhile (only a finished one can be deleted) keeps its times.
    status = (MetricJob.objects.select_for_update().filter(pk=job.pk)
              .values_list("status", flat=True).first())
    if status is None or status in FINISHED_JOB_STATUSES:
        return None
    if status == JobStatus.WAITING:  # its start, lost or not yet due (its run generates)
        return _metric_job_start(job.pk) or 0
    pending = list(job.shards.exclude(status=ShardStatus.DONE).values_list("id", flat=True))
    if pending:
        MetricJob.objects.filter(pk=job.pk).update(
            started_at=None, images_done_at_resume=job.images_done(), not_queued=False,
            error="")
        _enqueue_shards(job.pk, pending)
        return len(pending)
    MetricJob.objects.filter(pk=job.pk).update(not_queued=False, error="")
    MetricJob.objects.filter(pk=job.pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
                             ).update(status=JobStatus.FINALIZING)
    enqueue_on_commit(FINALIZE_JOB_TASK, job.pk, not_queued=lambda: _not_queued(job.pk))
    return 1


def metric_job_process_inline(*, job: MetricJob) -> MetricJob:
    """Compute every shard and the finalize step in this process (CLI ``--inline``, tests)."""
    for shard_id in job.shards.order_by("index").values_list("id", flat=True):
        metric_shard_run(shard_id=shard_id)
    job.refresh_from_db()
    return job


def metric_job_fail(*, job: MetricJob, error: str) -> None:
    """Mark an unfinished job failed with ``error`` (a finished job keeps its outcome)."""
    MetricJob.objects.filter(pk=job.pk).exclude(status__in=FINISHED_JOB_STATUSES).update(
        status=JobStatus.FAILED, error=error[:5000], finished_at=timezone.now())


# --- one shard (gpu workers) -------------------------------------------------------------------


def _store_image_clip_scores(scores: dict[int, float], prov: Provenance,
                             metric: str = MetricName.CLIP_SCORE) -> None:
    rows = [ImageMetric(image_id=image_id, metric=metric, value=value,
                        **prov.as_fields()) for image_id, value in scores.items()]
    ImageMetric.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["image", "metric", "backbone_id"],
        update_fields=["value", "weights_sha256", "calibrated", "library_versions",
                       "created_at"])


def metric_shard_run(*, shard_id: int) -> None:
    """Compute one shard (idempotent) and, if it completes the job, finalize the job."""
    from evalhub.evaluation import compute  # torch: only workers get here
    from metrics.imageio import ImageDecodeError
    from metrics.video_frames import VideoDecodeError
    from metrics.weights import WeightsMissingError

    shard = (MetricShard.objects.select_related("job", "job__reference_set")
             .filter(pk=shard_id).first())
    if shard is None:
        return
    job = shard.job
    if job.finished:
        return
    if shard.status == ShardStatus.DONE:  # a redelivery after the shard was stored
        metric_job_claim_finalize(job_id=job.pk)
        return
    MetricShard.objects.filter(pk=shard.pk).update(status=ShardStatus.RUNNING,
                                                   attempts=F("attempts") + 1)
    now = timezone.now()
    MetricJob.objects.filter(pk=job.pk, started_at__isnull=True).update(started_at=now)
    MetricJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(status=JobStatus.RUNNING)
    is_run_shard = shard.kind == ShardKind.RUN
    try:
        images = selectors.shard_images(shard=shard)
        video_references = not is_run_shard and _references_videos(job)
        result = compute.shard_compute(
            metrics=set(job.metrics), options=job_options(job.options), is_run_shard=is_run_shard,
            images=images,
            blobs=[img.blob for img in images] if is_run_shard else [] if video_references
            else selectors.shard_blobs(shard=shard),
            videos=selectors.shard_videos(shard=shard) if video_references else (),
            has_reference_stats=lambda backbone_id: selectors.reference_stats_current(
                job=job, backbone_id=backbone_id) is not None)
        if result.clip_scores:
            _store_image_clip_scores(result.clip_scores, result.backbones["clip"])
        for metric, values in result.video_values.items():
            _store_image_clip_scores(values, result.backbones[_VIDEO_BACKBONE[metric]], metric)
    except (WeightsMissingError, ImageDecodeError, VideoDecodeError, EvalHubError) as exc:
        # Missing weights or an unreadable image will not heal by retrying: fail fast.
        MetricShard.objects.filter(pk=shard.pk).update(status=ShardStatus.FAILED,
                                                       error=str(exc)[:5000])
        metric_job_fail(job=job, error=str(exc))
        return
    except DatabaseError:
        raise  # the task retries these
    except Exception as exc:
        logger.exception("metric job %s shard %s failed", job.pk, shard.index)
        MetricShard.objects.filter(pk=shard.pk).update(status=ShardStatus.FAILED,
                                                       error=repr(exc)[:5000])
        metric_job_fail(job=job, error=f"shard {shard.index} failed: {exc!r}")
        raise

    with transaction.atomic():
        locked = MetricJob.objects.select_for_update().get(pk=job.pk)
        if locked.finished:
            return
        MetricShard.objects.filter(pk=shard.pk).update(
            status=ShardStatus.DONE, fid_stats=result.fid_stats, payload=result.payload(),
            features_computed=result.features_computed, error="")
        done = MetricShard.objects.filter(job_id=job.pk, status=ShardStatus.DONE).count()
        fields: dict[str, Any] = {"shards_done": done}
        claimed = done >= locked.shards_total and locked.status in (JobStatus.QUEUED,
                                                                    JobStatus.RUNNING)
        if claimed:
            fields["status"] = JobStatus.FINALIZING
        MetricJob.objects.filter(pk=job.pk).update(**fields)
    if claimed:
        _finalize_or_fail(job.pk)


def metric_job_claim_finalize(*, job_id: int) -> None:
    """For redeliveries: finalize if every shard is done and nobody finished the job yet."""
    with transaction.atomic():
        job = MetricJob.objects.select_for_update().get(pk=job_id)
        done = MetricShard.objects.filter(job_id=job_id, status=ShardStatus.DONE).count()
        if job.status in (JobStatus.QUEUED, JobStatus.RUNNING) and done >= job.shards_total:
            MetricJob.objects.filter(pk=job_id).update(status=JobStatus.FINALIZING,
                                                       shards_done=done)
        elif job.status != JobStatus.FINALIZING:
            return
    _finalize_or_fail(job_id)


def _finalize_or_fail(job_id: int) -> None:
    """Finalize; a bug in it fails the job (with the error) instead of leaving it stuck."""
    try:
        metric_job_finalize(job_id=job_id)
    except OperationalError:
        raise  # transient: the task retries, the redelivered shard finalizes
    except Exception as exc:
        logger.exception("metric job %s: finalize failed", job_id)
        MetricJob.objects.filter(pk=job_id, status=JobStatus.FINALIZING).update(
            status=JobStatus.FAILED, error=f"finalize failed: {exc!r}"[:5000],
            finished_at=timezone.now())
        raise


# --- finalize (gpu workers) --------------------------------------------------------------------


def metric_job_finalize(*, job_id: int) -> None:
    """Merge shard results into RunMetric/PromptMetric rows; runs once per job (row lock)."""
    with transaction.atomic():
        job = (MetricJob.objects.select_for_update(of=("self",))
               .select_related("run", "reference_set").get(pk=job_id))
        if job.status != JobStatus.FINALIZING:
            return  # another delivery finalized it already
        shards = list(job.shards.order_by("index"))
        if any(s.status != ShardStatus.DONE for s in shards):
            MetricJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
            return
        results: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for metric in job.metrics:
            if (shard_error := _shard_error(shards, metric)) is not None:
                errors[metric] = shard_error
                continue
            try:
                with transaction.atomic():
                    results[metric] = _FINALIZERS[metric](job, shards)
            except (MetricNotComputed, ValueError) as exc:  # incl. InsufficientSamplesError
                errors[metric] = str(exc)
            except DatabaseError:
                raise
            except Exception as exc:  # a bug: report it on the job, keep the other metrics
                logger.exception("metric job %s: %s failed", job.pk, metric)
                errors[metric] = f"internal error: {exc!r}"
        if errors and results:
            status = JobStatus.PARTIAL
        elif errors:
            status = JobStatus.FAILED
        else:
            status = JobStatus.COMPLETED
        MetricJob.objects.filter(pk=job.pk).update(
            status=status, results=results, metric_errors=errors,
            error="; ".join(f"{m}: {e}" for m, e in errors.items())[:5000],
            shards_done=len(shards), finished_at=timezone.now())


def _shard_error(shards: Sequence[MetricShard], metric: str) -> str | None:
    """Why ``metric`` could not be computed by some shard (``compute.metric_errors``, kept in
    the shard's payload): the first such shard's reason, and how many others had one."""
    failed = [(s.index, s.payload["errors"][metric]) for s in shards
              if metric in (s.payload or {}).get("errors", {})]
    if not failed:
        return None
    index, message = failed[0]
    others = len(failed) - 1
    more = f" (and {others} other shard{'s' if others > 1 else ''})" if others else ""
    return f"shard {index}: {message}{more}"


def _features(shas: Sequence[str], backbone_id: str, what: str) -> np.ndarray:
    """Cached feature vectors, row-aligned with ``shas``; every one must be there."""
    found = DatabaseFeatureCache().get_many(shas, backbone_id)
    missing = [s for s in dict.fromkeys(shas) if s not in found]
    if missing:
        raise MetricNotComputed(f"{len(missing)} {what} feature vector(s) for {backbone_id} "
                                "are missing from the feature cache; run the job again")
    return np.stack([found[s] for s in shas])


def _references_videos(job: MetricJob) -> bool:
    """Whether the job's reference shards hold VideoBlob ids (a video reference set: FVD)."""
    return job.reference_set is not None and job.reference_set.media_kind == MediaKind.VIDEO


def _payloads(shards: Sequence[MetricShard], kind: str | None = None) -> list[dict[str, Any]]:
    return [s.payload for s in shards if kind is None or s.kind == kind]


def _store_run_metric(job: MetricJob, metric: str, prov: Provenance, computed: MetricComputed,
                      *, with_reference: bool) -> dict[str, Any]:
    """Upsert the run's value (one per run, metric, reference set, backbone and way of
    computing it: :func:`~evalhub.evaluation.models.computed_as`); returns the
    JSON summary kept in the job's ``results``. A value that is not a finite number is this
    metric's error, not the job's (the database refused NaN, failing the other metrics too)."""
    if not math.isfinite(computed.value) or (computed.std is not None
                                             and not math.isfinite(computed.std)):
        raise MetricNotComputed(f"{metric} came out as {computed.value!r} (not a finite number) "
                                f"for run {job.run.name!r}: too few images for its settings?")
    RunMetric.objects.update_or_create(
        run=job.run, metric=metric, backbone_id=prov.backbone_id,
        reference_set=job.reference_set if with_reference else None,
        computed_as=computed_as(computed.details),
        defaults={**prov.as_fields(), "value": computed.value, "std": computed.std,
                  "n_images": computed.n_images, "details": {**computed.details, "job": job.pk}},
    )
    return {"value": computed.value, "std": computed.std, "n_images": computed.n_images,
            **prov.as_fields(), "uncalibrated": not prov.calibrated,
            **({"details": computed.details} if computed.details else {})}


def _store_prompt_metrics(job: MetricJob, metric: str, prov: Provenance,
                          values: dict[int, float]) -> None:
    for prompt_id, value in values.items():
        PromptMetric.objects.update_or_create(
            run=job.run, prompt_id=prompt_id, metric=metric, backbone_id=prov.backbone_id,
            defaults={**prov.as_fields(), "value": value})


def _reference_stats(job: MetricJob, shards: Sequence[MetricShard],
                     prov: Provenance) -> GaussianStats:
    """The reference set's FID (FVD) statistics: stored per (reference set, backbone),
    recomputed (by merging the reference shards' partials, or from cached features) when
    stale."""
    from evalhub.evaluation import compute

    stored = selectors.reference_stats_current(job=job, backbone_id=prov.backbone_id)
    if stored is not None:
        return compute.stats_from_bytes(bytes(stored.stats))
    ref_shards = [s for s in shards if s.kind == ShardKind.REFERENCE]
    if ref_shards and all(s.fid_stats for s in ref_shards):
        stats = compute.merge_stats([bytes(s.fid_stats) for s in ref_shards])
    else:
        stats = compute.stats_of_features(_features(
            selectors.job_reference_shas(shards=shards, videos=_references_videos(job)),
            prov.backbone_id, "reference"))
    ReferenceStats.objects.update_or_create(
        reference_set=job.reference_set, backbone_id=prov.backbone_id,
        defaults={**prov.as_fields(), "images_digest": job.reference_digest, "n": stats.n,
                  "dim": stats.dim, "stats": stats.to_bytes()})
    return stats


def _finalize_fid(job: MetricJob, shards: Sequence[MetricShard]) -> dict[str, Any]:
    from evalhub.evaluation import compute

    prov = compute.shard_backbone(_payloads(shards), "inception")
    opts = job_options(job.options)
    computed = compute.fid(
        run_parts=[bytes(s.fid_stats) for s in shards
                   if s.kind == ShardKind.RUN and s.fid_stats],
        reference=_reference_stats(job, shards, prov),
        allow_rank_deficient=opts["fid_allow_rank_deficient"], antialias=opts["antialias"],
        run_name=job.run.name,
        reference_name=job.reference_set.name if job.reference_set else "?")
    return _store_run_metric(job, "fid", prov, computed, with_reference=True)


def _finalize_fvd(job: MetricJob, shards: Sequence[MetricShard]) -> dict[str, Any]:
    from evalhub.evaluation import compute

    prov = compute.shard_backbone(_payloads(shards), "i3d")
    opts = {**VIDEO_OPTION_DEFAULTS, **job_options(job.options)}
    computed = compute.fvd(
        run_parts=[bytes(s.fid_stats) for s in shards
                   if s.kind == ShardKind.RUN and s.fid_stats],
        reference=_reference_stats(job, shards, prov), backbone=prov,
        allow_rank_deficient=bool(opts["fvd_allow_rank_deficient"]),
        clip_frames=int(opts["fvd_clip_frames"]), run_name=job.run.name,
        reference_name=job.reference_set.name if job.reference_set else "?")
    return _store_run_metric(job, "fvd", prov, computed, with_reference=True)


def _run_and_reference_features(job: MetricJob, shards: Sequence[MetricShard],
                                prov: Provenance) -> tuple[np.ndarray, np.ndarray]:
    run = _features([img.blob.sha256 for img in selectors.job_run_images(shards=shards)],
                    prov.backbone_id, "run image")
    reference = _features(selectors.job_reference_shas(shards=shards), prov.backbone_id,
                          "reference")
    return run, reference


def _finalize_kid(job: MetricJob, shards: Sequence[MetricShard]) -> dict[str, Any]:
    from evalhub.evaluation import compute

    prov = compute.shard_backbone(_payloads(shards), "inception")
    opts = job_options(job.options)
    run, reference = _run_and_reference_features(job, shards, prov)
    computed = compute.kid(reference=reference, run=run, subsets=opts["kid_subsets"],
                           subset_size=opts["kid_subset_size"])
    return _store_run_metric(job, "kid", prov, computed, with_reference=True)


def _finalize_cmmd(job: MetricJob, shards: Sequence[MetricShard]) -> dict[str, Any]:
    from evalhub.evaluation import compute

    prov = compute.shard_backbone(_payloads(shards), "clip")
    run, reference = _run_and_reference_features(job, shards, prov)
    computed = compute.cmmd_of(reference=reference, run=run,
                               estimator=job_options(job.options)["cmmd_estimator"])
    return _store_run_metric(job, "cmmd", prov, computed, with_reference=True)


def _finalize_clip_score(job: MetricJob, shards: Sequence[MetricShard]) -> dict[str, Any]:
    from evalhub.evaluation import compute

    prov = compute.shard_backbone(_payloads(shards, ShardKind.RUN), "clip")
    images = selectors.job_run_images(shards=shards)
    stored = selectors.image_metric_values(image_ids=[img.id for img in images],
                                           metric=MetricName.CLIP_SCORE,
                                           backbone_id=prov.backbone_id)
    if len(stored) != len(images):
        raise MetricNotComputed(f"{len(images) - len(stored)} image CLIP-scores are missing; "
                                "run the job again")
    computed, per_prompt = compute.clip_score_summary(
        [(img.prompt_id, stored[img.id].value) for img in images])
    _store_prompt_metrics(job, "clip_score", prov, per_prompt)
    return _store_run_metric(job, "clip_score", prov, computed, with_reference=False)


def _finalize_lpips(job: MetricJob, shards: Sequence[MetricShard]) -> dict[str, Any]:
    from evalhub.evaluation import compute

    payloads = _payloads(shards, ShardKind.RUN)
    prov = compute.shard_backbone(payloads, "lpips")
    per_prompt = compute.shard_diversities(payloads)
    computed = compute.lpips_summary(per_prompt)
    _store_prompt_metrics(job, "lpips_diversity", prov,
                          {p: d.value for p, d in per_prompt.items()})
    return _store_run_metric(job, "lpips_diversity", prov, computed, with_reference=False)


#: Which shard backbone each per-video metric's values come from.
_VIDEO_BACKBONE = {"video_clip_score": "clip", "temporal_consistency": "clip", "flicker": "lpips"}


def _finalize_video(metric: str) -> Callable[[MetricJob, Sequence[MetricShard]], dict[str, Any]]:
    """Finalizer of a per-video metric: the run's value is the mean over its videos, each
    prompt's the mean over its videos (computed by this job's shards: their payloads; the
    shards also store them per video as ImageMetric rows)."""

    def finalize(job: MetricJob, shards: Sequence[MetricShard]) -> dict[str, Any]:
        from evalhub.evaluation import compute

        payloads = _payloads(shards, ShardKind.RUN)
        prov = compute.shard_backbone(payloads, _VIDEO_BACKBONE[metric])
        videos = [img for img in selectors.job_run_images(shards=shards)
                  if img.video_id is not None]
        stored = compute.shard_video_values(payloads, metric)
        if missing := [img.id for img in videos if img.id not in stored]:
            # Shards stored by the release before kept their values only as ImageMetric rows.
            stored.update({image_id: v.value for image_id, v in selectors.image_metric_values(
                image_ids=missing, metric=metric, backbone_id=prov.backbone_id).items()})
        if not videos:
            raise MetricNotComputed(f"{metric}: the run has no videos")
        if len(stored) != len(videos):
            raise MetricNotComputed(
                f"{metric}: {len(videos) - len(stored)} of {len(videos)} videos have no value "
                "(a video of a single frame has no consecutive frames); run the job again if "
                "that is not why")
        computed, per_prompt = compute.clip_score_summary(
            [(img.prompt_id, stored[img.id]) for img in videos])
        # The options the values were computed with decide their way of computing
        # (COMPARABILITY_DETAILS): 2 sampled frames are not comparable with 16.
        opts = {**VIDEO_OPTION_DEFAULTS, **job_options(job.options)}
        computed = dataclasses.replace(computed, details={
            **computed.details, **{key: opts[key] for key in VIDEO_METRIC_OPTIONS[metric]}})
        _store_prompt_metrics(job, metric, prov, per_prompt)
        return _store_run_metric(job, metric, prov, computed, with_reference=False)

    return finalize


_FINALIZERS: dict[str, Callable[[MetricJob, Sequence[MetricShard]], dict[str, Any]]] = {
    "fid": _finalize_fid,
    "kid": _finalize_kid,
    "clip_score": _finalize_clip_score,
    "cmmd": _finalize_cmmd,
    "lpips_diversity": _finalize_lpips,
    **{metric: _finalize_video(metric) for metric in sorted(VIDEO_METRICS)},
    "fvd": _finalize_fvd,
}
