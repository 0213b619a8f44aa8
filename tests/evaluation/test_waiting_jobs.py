"""A metric job over a run that is still generating waits for it: its metrics describe the
whole run, so its shards are made and queued when the run closes (evaluation/services.py)."""

from __future__ import annotations

import pytest

from evalhub.core.errors import EvalHubError
from evalhub.core.recovery import unfinished_work
from evalhub.evaluation.models import JobStatus, MetricJob
from evalhub.evaluation.services import (
    metric_job_create,
    metric_job_resume,
    metric_jobs_start_waiting_for,
)
from evalhub.generation.services import generation_mark_failed, run_refresh_progress
from evalhub.runs.models import GenerationRun, MediaKind, RunStatus
from tests.evaluation.helpers import FAST_OPTIONS, make_reference_set, make_run
from tests.factories import GenerationRunFactory

pytestmark = pytest.mark.django_db


def generating(run: GenerationRun, *, total: int) -> GenerationRun:
    """``run`` as a worker leaves it mid-generation: ``total`` items asked for."""
    GenerationRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, items_total=total, items_done=run.images.count())
    run.refresh_from_db()
    return run


def test_a_job_over_a_run_still_generating_waits_without_shards_and_is_not_made_twice(
        django_capture_on_commit_callbacks):
    run = generating(make_run(prompts=2, seeds=2), total=8)  # 4 of 8 made
    with django_capture_on_commit_callbacks() as sent:
        job = metric_job_create(run=run, metrics=["clip_score"], options=FAST_OPTIONS)
    assert job.status == JobStatus.WAITING
    assert job.shards_total == job.images_total == 0 and not job.shards.exists()
    assert sent == []  # nothing queued: half the run would stand as its value
    again = metric_job_create(run=run, metrics=["clip_score"], options=FAST_OPTIONS)
    assert again.pk == job.pk


def test_the_run_closing_starts_its_waiting_jobs_on_all_its_images(
        django_capture_on_commit_callbacks):
    run = generating(make_run(prompts=2, seeds=2), total=4)
    job = metric_job_create(run=run, metrics=["clip_score", "lpips_diversity"],
                            options=FAST_OPTIONS)
    with django_capture_on_commit_callbacks():
        run_refresh_progress(run=run)  # what the batch storing the last item does
    assert run.status == RunStatus.COMPLETED
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.images_total == 4
    assert job.shards.count() == job.shards_total >= 1
    # Closing again (a launch of the closed run) starts nothing twice.
    assert metric_jobs_start_waiting_for(run=run) == 0
    assert job.shards.count() == job.shards_total


def test_a_waiting_job_whose_run_failed_without_outputs_fails_saying_why():
    run = generating(GenerationRunFactory(name="broken"), total=4)
    job = metric_job_create(run=run, metrics=["clip_score"], options=FAST_OPTIONS)
    generation_mark_failed(run=run, error="weights missing")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.finished_at is not None
    assert job.error == ("Not started when run 'broken' finished (failed): Run 'broken' has no "
                         "images: there is nothing to compute metrics on. Generate or import "
                         "its images first.")


def test_a_waiting_job_whose_reference_set_was_deleted_fails_when_the_run_closes(
        django_capture_on_commit_callbacks):
    run = generating(make_run(prompts=2, seeds=1), total=2)
    reference_set = make_reference_set(run.project, n=4)
    job = metric_job_create(run=run, metrics=["fid"], reference_set=reference_set,
                            options=FAST_OPTIONS)
    assert job.status == JobStatus.WAITING
    reference_set.delete()  # allowed: a waiting job computes nothing yet
    with django_capture_on_commit_callbacks():
        run_refresh_progress(run=run)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "fid compares the run with real images: choose a reference set" in job.error


def test_resume_leaves_a_waiting_job_waiting_until_its_run_closes_then_starts_it(
        django_capture_on_commit_callbacks):
    run = generating(make_run(prompts=1, seeds=2), total=2)
    job = metric_job_create(run=run, metrics=["lpips_diversity"], options=FAST_OPTIONS)
    assert metric_job_resume(job=job) == 0
    assert job.status == JobStatus.WAITING
    # The run closed, but its start of the waiting jobs was lost (its worker killed then).
    GenerationRun.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    with django_capture_on_commit_callbacks():
        queued = metric_job_resume(job=job)
    assert job.status == JobStatus.QUEUED and queued == job.shards_total >= 1


def test_recovery_leaves_jobs_waiting_for_a_generating_run_and_resumes_a_lost_start():
    run = generating(make_run(prompts=1, seeds=2), total=2)
    job = metric_job_create(run=run, metrics=["lpips_diversity"], options=FAST_OPTIONS)
    assert job.pk not in {j.pk for j in unfinished_work().jobs}
    GenerationRun.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    assert job.pk in {j.pk for j in unfinished_work().jobs}


def test_computing_here_and_now_refuses_a_run_still_generating():
    run = generating(make_run(prompts=1, seeds=1), total=4)
    with pytest.raises(EvalHubError, match=r"still generating \(1 of 4 items\).*Without "
                                           "--inline the job waits for the run"):
        metric_job_create(run=run, metrics=["clip_score"], enqueue=False)
    assert not MetricJob.objects.exists()


def test_video_metrics_over_a_run_still_generating_are_checked_against_its_generators_kind():
    # An image generator's run: refused at once, not a job that fails when the run is done.
    images = generating(GenerationRunFactory(name="stills", media_kind=MediaKind.IMAGE),
                        total=4)
    with pytest.raises(EvalHubError, match="flicker measures videos: run 'stills' has images"):
        metric_job_create(run=images, metrics=["clip_score", "flicker"], options=FAST_OPTIONS)
    assert not MetricJob.objects.exists()
    # A video generator's run (its kind set from the generator when the run was created).
    clips = generating(GenerationRunFactory(name="clips", media_kind=MediaKind.VIDEO), total=4)
    job = metric_job_create(run=clips, metrics=["flicker"], options=FAST_OPTIONS)
    assert job.status == JobStatus.WAITING
