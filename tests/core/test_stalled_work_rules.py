"""Which unfinished objects the sweep counts as stalled (evalhub/core/recovery.py
``stalled_work``), given what the broker and the workers hold. What they hold is read from a
real Redis and real workers in tests/integration/test_stalled_work.py; here it is given, so
that each rule is shown on its own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from evalhub.campaigns.building.pairs import BUILD_TASK
from evalhub.campaigns.models import Campaign, CampaignStatus
from evalhub.core.recovery import InHand, Sweep, Work, resume_work, stalled_work, task_queues
from evalhub.evaluation.models import JobStatus, MetricJob, MetricShard
from evalhub.evaluation.services import FINALIZE_JOB_TASK, RUN_SHARD_TASK, metric_job_create
from evalhub.generation.services import GENERATE_BATCH_TASK
from evalhub.runs.models import GenerationRun, RunSource, RunStatus
from tests.evaluation.helpers import make_run
from tests.factories import CampaignFactory, GenerationRunFactory, ImageFactory
from tests.ports import free_port

pytestmark = pytest.mark.django_db

QUIET = timedelta(minutes=10)
IDLE = InHand(waiting={"default": 0, "gpu": 0}, workers=1)


def _stalled(in_hand: InHand = IDLE) -> Work:
    return stalled_work(in_hand=in_hand, quiet_for=QUIET, queue_of=task_queues())


def _long_ago() -> timezone.datetime:
    return timezone.now() - timedelta(hours=1)


def _run(status: str = RunStatus.RUNNING) -> GenerationRun:
    run = GenerationRunFactory(source=RunSource.GENERATED)
    GenerationRun.objects.filter(pk=run.pk).update(status=status, created_at=_long_ago(),
                                                   started_at=_long_ago())
    return run


def _job() -> MetricJob:
    """An unfinished metric job of one shard, on an imported run."""
    job = metric_job_create(run=make_run(prompts=1, seeds=2), metrics=["lpips_diversity"],
                            enqueue=False)
    assert job.shards_total == 1 and job.status == JobStatus.QUEUED
    MetricJob.objects.filter(pk=job.pk).update(created_at=_long_ago())
    MetricShard.objects.filter(job=job).update(updated_at=_long_ago())
    return job


def _building(*runs: GenerationRun) -> Campaign:
    campaign = CampaignFactory(status=CampaignStatus.BUILDING)
    campaign.runs.set(runs)
    Campaign.objects.filter(pk=campaign.pk).update(created_at=_long_ago())
    return campaign


def _keys(work: Work) -> tuple[list[int], list[int], list[int]]:
    return ([r.pk for r in work.runs], [j.pk for j in work.jobs],
            [c.pk for c in work.campaigns])


def test_quiet_unfinished_work_is_stalled_when_nothing_waits_and_nothing_is_held():
    run = _run()
    job = _job()
    campaign = _building(_run(RunStatus.COMPLETED))
    _run(RunStatus.COMPLETED)  # finished: never stalled

    assert _keys(_stalled()) == ([run.pk], [job.pk], [campaign.pk])


def test_nothing_is_stalled_when_no_worker_answered():
    _run()
    assert not _stalled(InHand(waiting={"default": 0, "gpu": 0}, workers=0))


def test_recent_progress_keeps_work_from_being_stalled():
    moving_run = _run()
    ImageFactory(run=moving_run)  # an output stored just now
    job = _job()
    MetricShard.objects.filter(job=job).update(updated_at=timezone.now())
    fresh = CampaignFactory(status=CampaignStatus.BUILDING)

    runs, jobs, campaigns = _keys(_stalled())
    assert moving_run.pk not in runs and jobs == [] and fresh.pk not in campaigns


def test_a_campaign_waiting_for_a_run_still_generating_is_not_stalled():
    generating = _run(RunStatus.PENDING)
    campaign = _building(_run(RunStatus.COMPLETED), generating)
    assert campaign.pk not in _keys(_stalled())[2]

    GenerationRun.objects.filter(pk=generating.pk).update(status=RunStatus.COMPLETED)
    assert _keys(_stalled())[2] == [campaign.pk]


def test_work_whose_task_a_worker_holds_is_not_stalled():
    run, other = _run(), _run()
    job = _job()
    finalizing = _job()
    campaign = _building(_run(RunStatus.COMPLETED))
    shard = job.shards.get()
    held = InHand(waiting={"default": 0, "gpu": 0}, workers=2, tasks=(
        (GENERATE_BATCH_TASK, (run.pk, 0, 16)),
        (RUN_SHARD_TASK, (shard.pk,)),
        (FINALIZE_JOB_TASK, (finalizing.pk,)),
        (BUILD_TASK, (campaign.pk,)),
    ))

    assert _keys(_stalled(held)) == ([other.pk], [], [])


def test_a_queue_holding_messages_holds_back_the_work_routed_to_it():
    run = _run()
    job = _job()
    campaign = _building(_run(RunStatus.COMPLETED))

    gpu_busy = InHand(waiting={"default": 0, "gpu": 3}, workers=1)
    assert _keys(_stalled(gpu_busy)) == ([], [], [campaign.pk])
    default_busy = InHand(waiting={"default": 1, "gpu": 0}, workers=1)
    assert _keys(_stalled(default_busy)) == ([run.pk], [job.pk], [])


def test_the_sweep_does_nothing_on_a_broker_that_cannot_say_what_it_holds(caplog,
                                                                          monkeypatch):
    """The embedded default's filesystem broker answers no broadcast: it resumes at start
    instead (run_embedded), and neither the beat task nor the command guesses."""
    from evalhub.core.tasks import resume_stalled_work

    _run()
    # Celery reads the variable before its own setting.
    monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://localhost/")
    assert resume_stalled_work() == 0
    with pytest.raises(CommandError) as refused:
        call_command("resume_stalled_work")
    assert "the filesystem broker cannot say what its queues and workers hold" in caplog.text
    assert "the sweep needs Redis" in str(refused.value)


def test_the_command_says_so_when_the_broker_does_not_answer(broker):
    broker(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(CommandError, match="The broker did not answer"):
        call_command("resume_stalled_work", timeout=0.5)


def test_a_refused_resume_is_reported_and_not_counted_as_resumed():
    """A run whose generator is no longer installed cannot be launched: its line says why, and
    the sweep's count (and ``evalhub_stalled_work_resumed_total``) leaves it out."""
    gone = _run()
    gone.checkpoint.generator = "no-such-generator"
    gone.checkpoint.save(update_fields=["generator"])
    campaign = _building(_run(RunStatus.COMPLETED))

    outcomes = resume_work(Work(runs=[gone], campaigns=[campaign]))

    assert [(o.kind, o.done) for o in outcomes] == [("run", False), ("campaign", True)]
    assert outcomes[0].line.startswith(f"Not resumed: generation run {gone.pk} ")
    assert Sweep(in_hand=IDLE, outcomes=outcomes).resumed == 1
