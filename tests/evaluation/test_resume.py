"""Resuming a metric job whose task messages were lost: the API's action and the command (the
workspace's button: tests/workspace/test_pages.py). Only the shards not done are queued again;
a finished job is refused with the reason."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from evalhub.evaluation.models import JobStatus, MetricJob, ShardStatus
from evalhub.evaluation.services import FINALIZE_JOB_TASK, RUN_SHARD_TASK, metric_job_create
from tests.evaluation.helpers import FAST_OPTIONS, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def stuck(project) -> MetricJob:
    """A job of three shards, the first one stored, whose other messages were lost."""
    run = make_run(prompts=3, seeds=1, checkpoint__model__project=project)
    job = metric_job_create(run=run, metrics=["clip_score"],
                            options={**FAST_OPTIONS, "shard_size": 1}, enqueue=False)
    first = job.shards.order_by("index").first()
    first.status = ShardStatus.DONE
    first.save(update_fields=["status"])
    MetricJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, shards_done=1)
    job.refresh_from_db()
    return job


def _missing(job: MetricJob) -> list[tuple[str, list[int]]]:
    return [(RUN_SHARD_TASK, [pk]) for pk in job.shards.exclude(status=ShardStatus.DONE)
            .order_by("index").values_list("pk", flat=True)]


def _resume(api, job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return api.post(f"/api/v1/metric-jobs/{job.pk}/resume/")


def test_scientists_and_owners_queue_again_only_the_shards_not_done(
        api, scientist, owner, stuck, sent_tasks, django_capture_on_commit_callbacks):
    missing = _missing(stuck)
    assert len(missing) == 2
    for user in (scientist, owner):
        api.force_authenticate(user)
        response = _resume(api, stuck, django_capture_on_commit_callbacks)
        assert response.status_code == 202, response.json()
        body = response.json()
        assert (body["id"], body["status"], body["shards_done"], body["shards_total"]) == (
            stuck.pk, "running", 1, 3)
    assert sent_tasks == missing + missing  # pressed twice: queued twice, stored once
    stuck.refresh_from_db()
    assert stuck.status == JobStatus.RUNNING


def test_a_resume_is_timed_from_its_first_shard_taken_with_the_images_done_before_it(
        api, scientist, stuck, sent_tasks, django_capture_on_commit_callbacks):
    # The progress page's images/s count only the shards done since (workspace/progress.py;
    # tests/workspace/test_pages.py, a resumed job's rate).
    MetricJob.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - timedelta(hours=1))
    api.force_authenticate(scientist)
    body = _resume(api, stuck, django_capture_on_commit_callbacks).json()
    assert body["started_at"] is None  # set again by the first shard a worker takes
    stuck.refresh_from_db()
    assert (stuck.started_at, stuck.images_done_at_resume) == (None, 1)


def test_a_job_whose_shards_are_all_done_gets_its_finalize_step_queued(
        api, scientist, stuck, sent_tasks, django_capture_on_commit_callbacks):
    stuck.shards.update(status=ShardStatus.DONE)
    started = timezone.now() - timedelta(minutes=5)
    MetricJob.objects.filter(pk=stuck.pk).update(shards_done=3, started_at=started)
    api.force_authenticate(scientist)
    response = _resume(api, stuck, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    assert response.json()["status"] == "finalizing"
    assert sent_tasks == [(FINALIZE_JOB_TASK, [stuck.pk])]
    stuck.refresh_from_db()  # no shard computed again: the job's time is still its shards'
    assert (stuck.started_at, stuck.images_done_at_resume) == (started, 0)


def test_annotators_outsiders_and_anonymous_callers_resume_nothing(
        api, annotator, outsider, stuck, sent_tasks, django_capture_on_commit_callbacks):
    assert _resume(api, stuck, django_capture_on_commit_callbacks).status_code == 401
    for user in (annotator, outsider):
        api.force_authenticate(user)
        assert _resume(api, stuck, django_capture_on_commit_callbacks).status_code == 404
    assert sent_tasks == []


@pytest.mark.parametrize("finished", [JobStatus.COMPLETED, JobStatus.PARTIAL, JobStatus.FAILED])
def test_a_finished_job_is_refused_with_409_and_the_reason(
        api, scientist, stuck, sent_tasks, django_capture_on_commit_callbacks, finished):
    MetricJob.objects.filter(pk=stuck.pk).update(status=finished)
    api.force_authenticate(scientist)
    response = _resume(api, stuck, django_capture_on_commit_callbacks)
    assert response.status_code == 409
    body = response.json()
    assert body["detail"].startswith(f"Job {stuck.pk} is already {finished}.")
    assert "create it again" in body["detail"] and body["code"] == "job_finished"
    assert sent_tasks == []


def test_the_command_resumes_a_job_and_refuses_a_finished_or_unknown_one(
        stuck, sent_tasks, django_capture_on_commit_callbacks):
    missing = _missing(stuck)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("resume_metric_job", str(stuck.pk), stdout=out)
    assert sent_tasks == missing
    assert (f"Metric job {stuck.pk} for run {stuck.run.name!r} (running, 1/3 shards done): "
            "2 shard(s) not done queued again.") in out.getvalue()
    MetricJob.objects.filter(pk=stuck.pk).update(status=JobStatus.COMPLETED)
    with pytest.raises(CommandError, match=f"Job {stuck.pk} is already completed. Resume"):
        call_command("resume_metric_job", str(stuck.pk))
    with pytest.raises(CommandError, match="No metric job 999999999"):
        call_command("resume_metric_job", "999999999")
    assert sent_tasks == missing


def test_the_command_waits_and_reports_like_compute_metrics(stuck, sent_tasks, monkeypatch):
    from evalhub.evaluation.management.commands import compute_metrics
    from evalhub.evaluation.services import metric_shard_run

    def workers_compute_the_missing_shards(done, *, timeout, poll=1.0):
        for shard_id in stuck.shards.exclude(status=ShardStatus.DONE).values_list("pk",
                                                                                 flat=True):
            metric_shard_run(shard_id=shard_id)
        return done()

    # The fixture's first shard holds no values: here every shard is computed for real.
    stuck.shards.update(status=ShardStatus.PENDING)
    MetricJob.objects.filter(pk=stuck.pk).update(shards_done=0)
    monkeypatch.setattr(compute_metrics, "wait_until", lambda done, **kw: False)
    with pytest.raises(CommandError, match=rf"Timed out; job {stuck.pk} is running \(0/3"):
        call_command("resume_metric_job", str(stuck.pk), "--wait", "--timeout", "5")
    monkeypatch.setattr(compute_metrics, "wait_until", workers_compute_the_missing_shards)
    out = StringIO()
    call_command("resume_metric_job", str(stuck.pk), "--wait", stdout=out)
    text = out.getvalue()
    assert "3 shard(s) not done queued again" in text
    assert "UNCALIBRATED" in next(line for line in text.splitlines()
                                  if line.startswith("clip_score"))
    assert f"Job {stuck.pk} completed." in text


def test_the_previous_release_still_creates_metric_jobs_while_it_runs_beside_the_new_one(
        project):
    """During a deploy, processes of the previous release insert jobs without the new column:
    the database gives it its default (a NOT NULL column without one refused every job)."""
    run = make_run(prompts=1, seeds=1, checkpoint__model__project=project)
    before = MigrationLoader(connection).project_state(
        ("evaluation", "0008_run_metric_unique_computed_as")).apps.get_model(
        "evaluation", "MetricJob")
    row = before.objects.create(project_id=project.pk, run_id=run.pk, metrics=["clip_score"])
    assert MetricJob.objects.get(pk=row.pk).images_done_at_resume == 0


def test_the_command_ends_a_partial_job_like_compute_metrics(stuck, sent_tasks, monkeypatch):
    """A job that ends partial is not a success for resume_metric_job either: the same rule
    and line as compute_metrics (its ``_report``), exit status 3."""
    from evalhub.evaluation.management.commands import compute_metrics

    def the_job_ends_partial(done, *, timeout, poll=1.0):
        MetricJob.objects.filter(pk=stuck.pk).update(
            status=JobStatus.PARTIAL, metric_errors={"clip_score": "no text encoder"})
        return done()

    monkeypatch.setattr(compute_metrics, "wait_until", the_job_ends_partial)
    with pytest.raises(CommandError, match=rf"^Job {stuck.pk} partial: 1 of 1 metric not "
                                           r"computed \(clip_score: no text encoder\)") as end:
        call_command("resume_metric_job", str(stuck.pk), "--wait", stdout=StringIO())
    assert end.value.returncode == 3
