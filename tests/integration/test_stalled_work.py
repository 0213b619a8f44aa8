"""The sweep that queues again work whose task messages were lost (evalhub/core/recovery.py),
against real Redis and real worker processes: what it resumes is finished by a worker, and it
leaves alone what waits in a queue or sits in a worker's hands."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis
from django.utils import timezone
from prometheus_client import REGISTRY

from evalhub.blobs.services import blob_store_bytes
from evalhub.campaigns.building.pairs import BUILD_TASK
from evalhub.campaigns.models import Campaign, CampaignStatus
from evalhub.core.queueing import enqueue_on_commit
from evalhub.core.recovery import read_in_hand, resume_stalled_work
from evalhub.evaluation.models import JobStatus, MetricJob, MetricShard
from evalhub.evaluation.services import metric_job_create
from evalhub.runs.models import GenerationRun, RunSource, RunStatus
from tests.evaluation.helpers import image_bytes, make_run
from tests.factories import (
    CampaignFactory,
    CheckpointFactory,
    GenerationRunFactory,
    ImageFactory,
    ProjectFactory,
    PromptFactory,
    PromptSetFactory,
)
from tests.integration.workers import queue_keys, start_beat, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(300)]

QUIET = timedelta(minutes=10)
LONG_AGO = timedelta(hours=1)


def _quiet_since(when, *, run=None, job=None, campaign=None) -> None:
    """Move an object's timestamps back, as if nothing had happened to it since ``when``."""
    if run is not None:
        GenerationRun.objects.filter(pk=run.pk).update(created_at=when, started_at=when)
        run.images.update(created_at=when)
    if job is not None:
        MetricJob.objects.filter(pk=job.pk).update(created_at=when)
        MetricShard.objects.filter(job=job).update(updated_at=when)
    if campaign is not None:
        Campaign.objects.filter(pk=campaign.pk).update(created_at=when)


def _queued_run_without_messages(project) -> GenerationRun:
    """A run of 2 prompts x 2 seeds left ``queued`` with nothing in the broker: its launch's
    messages were lost."""
    prompt_set = PromptSetFactory(project=project)
    for text in ("a red circle", "a blue square"):
        PromptFactory(prompt_set=prompt_set, text=text)
    checkpoint = CheckpointFactory(model__project=project, generator="shapes",
                                   parameters={"quality": 0.9})
    run = GenerationRunFactory(checkpoint=checkpoint, prompt_set=prompt_set, name="lost",
                               source=RunSource.GENERATED, seeds=[0, 1])
    GenerationRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, items_total=4)
    return run


def _resumed(kind: str) -> float:
    """This process's ``evalhub_stalled_work_resumed_total{kind}``."""
    return REGISTRY.get_sample_value("evalhub_stalled_work_resumed_total", {"kind": kind}) or 0


def _same_prompts_as(run: GenerationRun) -> GenerationRun:
    """A second finished run of the same project on the same prompts (a campaign pairs them)."""
    other = GenerationRunFactory(checkpoint__model__project=run.project,
                                 prompt_set=run.prompt_set)
    for n, image in enumerate(run.images.all()):
        ImageFactory(run=other, prompt=image.prompt, seed=image.seed,
                     blob=blob_store_bytes(image_bytes(900 + n), name=f"{900 + n}.png"))
    return other


def _last_sweep_scraped(client) -> float | None:
    """``evalhub_stalled_work_last_sweep_timestamp_seconds`` as ``/metrics`` shows it."""
    text = client.get("/metrics").content.decode()
    for line in text.splitlines():
        if line.startswith("evalhub_stalled_work_last_sweep_timestamp_seconds "):
            return float(line.split()[1])
    return None


def test_lost_work_is_resumed_by_the_sweep_once_quiet_and_finished_by_the_worker(worker,
                                                                                client):
    measured = make_run(prompts=2, seeds=2)
    other = _same_prompts_as(measured)
    job = metric_job_create(run=measured, metrics=["lpips_diversity"], options={"shard_size": 2},
                            enqueue=False)
    lost_run = _queued_run_without_messages(measured.project)
    campaign = CampaignFactory(project=measured.project, status=CampaignStatus.BUILDING)
    campaign.runs.set([measured, other])
    long_ago = timezone.now() - LONG_AGO
    for obj in ({"run": lost_run}, {"job": job}, {"campaign": campaign}):
        _quiet_since(long_ago, **obj)

    # Quiet for an hour, not for two: nothing is stalled yet.
    before = time.time()
    sweep = resume_stalled_work(quiet_for=2 * LONG_AGO)
    assert sweep.in_hand.workers >= 1 and sweep.lines == []
    assert before <= _last_sweep_scraped(client) <= time.time()  # what an alert watches

    resumed = {kind: _resumed(kind) for kind in ("run", "metric_job", "campaign")}
    sweep = resume_stalled_work(quiet_for=QUIET)
    assert {kind: _resumed(kind) - n for kind, n in resumed.items()} == {
        "run": 1, "metric_job": 1, "campaign": 1}
    assert sorted(sweep.lines) == sorted([
        f"Resumed generation run {lost_run.pk} 'lost' (queued): 0 of 4 items stored, "
        "1 batch(es) queued.",
        f"Resumed metric job {job.pk} of run {measured.name!r} (queued): 0 of 2 shards done, "
        "2 queued.",
        f"Resumed campaign {campaign.pk} {campaign.name!r} (building): its build queued.",
    ])

    def finished() -> bool:
        for obj in (lost_run, job, campaign):
            obj.refresh_from_db()
        return (lost_run.status == RunStatus.COMPLETED and job.status == JobStatus.COMPLETED
                and campaign.status != CampaignStatus.BUILDING)

    wait_until(finished, timeout=240, what="the resumed work", on_timeout=worker.log)
    assert lost_run.items_done == 4 and lost_run.images.count() == 4
    assert job.shards_done == job.shards_total == 2
    assert campaign.tasks.exists()
    sweep = resume_stalled_work(quiet_for=timedelta(0))
    assert sweep.in_hand.workers >= 1 and sweep.lines == []


def test_work_waiting_in_its_queue_or_in_a_workers_hands_is_left_alone(start_worker,
                                                                       redis_url):
    # A worker that answers but consumes only `default`: what is sent to `gpu` waits there.
    default_only = start_worker("default-only", queues="default")
    run = make_run(prompts=2, seeds=2)
    job = metric_job_create(run=run, metrics=["lpips_diversity"], options={"shard_size": 2})
    campaign = CampaignFactory(project=run.project, status=CampaignStatus.BUILDING)
    campaign.runs.set([run])
    # Its build taken by the worker, due in two minutes: held as a scheduled task.
    enqueue_on_commit(BUILD_TASK, campaign.pk, countdown=120)
    wait_until(lambda: (BUILD_TASK, (campaign.pk,)) in read_in_hand(2.0).tasks, timeout=30,
               what="the build held by the worker", on_timeout=default_only.log)
    long_ago = timezone.now() - LONG_AGO
    _quiet_since(long_ago, job=job, campaign=campaign)

    sweep = resume_stalled_work(quiet_for=QUIET)
    assert sweep.in_hand.workers >= 1 and sweep.lines == []
    assert sweep.in_hand.waiting["gpu"] == 2  # the job's two shards
    broker = redis.Redis.from_url(redis_url)
    try:
        # The job's messages lost: once the queue is empty, the job is resumed; the build,
        # still in the worker's hands, is not.
        broker.delete(*queue_keys(["gpu"]))
        sweep = resume_stalled_work(quiet_for=QUIET)
        assert sweep.lines == [f"Resumed metric job {job.pk} of run {run.name!r} (queued): "
                               "0 of 2 shards done, 2 queued."]
        assert read_in_hand(2.0).waiting["gpu"] == 2
    finally:
        default_only.stop()
        broker.delete(*queue_keys(["default", "gpu"]))


def test_beat_sends_the_sweep_and_a_worker_finishes_what_it_resumed(start_worker, worker_env,
                                                                   tmp_path):
    """The deployment's wiring: Celery beat sends the sweep every EVALHUB_STALL_SWEEP_SECONDS,
    a worker runs it, and the run it resumes is generated."""
    sweeper = start_worker("sweeper", EVALHUB_STALLED_AFTER_SECONDS="1")
    run = _queued_run_without_messages(ProjectFactory())
    beat = start_beat(env={**worker_env, "EVALHUB_STALL_SWEEP_SECONDS": "1"}, folder=tmp_path)
    try:
        def generated() -> bool:
            run.refresh_from_db()
            return run.status == RunStatus.COMPLETED

        wait_until(generated, timeout=120, what="the run resumed by the beat-sent sweep",
                   on_timeout=lambda: sweeper.log() + (tmp_path / "beat.log").read_text())
    finally:
        beat.terminate()
        beat.wait(10)
    assert run.items_done == 4
    assert f"stalled work: Resumed generation run {run.pk} 'lost' (queued)" in sweeper.log()
    assert "Sending due task resume-stalled-work" in (tmp_path / "beat.log").read_text()
