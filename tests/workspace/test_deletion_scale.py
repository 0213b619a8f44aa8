"""Deleting big objects: a run of more images, or a campaign of more tasks, than one query may
bind keys (65,535 on PostgreSQL). The deletion collector, for the preview and the delete, goes
IN_CHUNK rows at a time (evalhub/core/bounded.py), and the blobs to clean up are sent IN_CHUNK
ids per message.

The tests make the chunk small (3) and build a few more rows than that, and check that no
statement binds more than a chunk's worth of values: building 65,536 rows and deleting them
takes over 25 s here. The real size (100,000 images, 100,000 tasks) was confirmed by a probe.
"""

from __future__ import annotations

import pytest
from django.db.models.sql.constants import GET_ITERATOR_CHUNK_SIZE

import evalhub.core.bounded
from evalhub.blobs.models import ImageBlob
from evalhub.campaigns.models import CampaignStatus, ComparisonTask, JudgeKind, Lease, TaskKind
from evalhub.campaigns.services import campaign_set_status
from evalhub.config.celery import app
from evalhub.runs.models import GenerationRun, Image
from evalhub.workspace.deletion import DeletionPlan, deletion_plan, object_delete
from tests.builders import build_campaign
from tests.factories import (
    CampaignFactory,
    ComparisonTaskFactory,
    GenerationRunFactory,
    ImageFactory,
    JudgmentFactory,
    LeaseFactory,
)
from tests.statements import statements, widest

pytestmark = pytest.mark.django_db

def _widest_but_deletes(seen: list[tuple[str, tuple]]) -> int:
    """The most values a statement of ``seen`` bound, Django's own DELETEs aside: they go
    GET_ITERATOR_CHUNK_SIZE (100) keys at a time, checked here."""
    deletes = [params for sql, params in seen if sql.startswith("DELETE")]
    assert all(len(params) <= GET_ITERATOR_CHUNK_SIZE + 1 for params in deletes)
    return widest([(sql, params) for sql, params in seen if not sql.startswith("DELETE")])


@pytest.fixture
def tasks_run_inline(monkeypatch):
    """Tasks sent by name run at once in this process, as a worker would; returns their
    (name, args)."""
    import evalhub.blobs.tasks  # noqa: F401  (registers the task, as the worker's autodiscovery)

    sent = []

    def run(name, args=None, countdown=None, **kwargs):
        sent.append((name, args))
        return app.tasks[name](*(args or []))

    monkeypatch.setattr(app, "send_task", run)
    return sent


def _run_of(images: int) -> tuple[GenerationRun, list[int]]:
    run = GenerationRunFactory(name=f"run of {images}")
    return run, [ImageFactory(run=run, seed=seed).pk for seed in range(images)]


def _campaign_of(tasks: int):
    campaign = CampaignFactory(status=CampaignStatus.CLOSED)
    made = [ComparisonTaskFactory(campaign=campaign) for _ in range(tasks)]
    for task in made[:4]:
        LeaseFactory(task=task)
    JudgmentFactory(task=made[0], judge_kind=JudgeKind.METRIC, annotator=None)
    return campaign, made


def _previewed_and_deleted(kind: str, obj) -> tuple[DeletionPlan, int]:
    """The delete's plan, and the most values a statement bound previewing and deleting."""
    with statements() as seen:
        plan = deletion_plan(kind=kind, obj=obj)
        object_delete(kind=kind, obj=obj)
    return plan, _widest_but_deletes(seen)


def test_a_run_of_more_images_than_a_chunk_is_previewed_and_deleted(monkeypatch):
    monkeypatch.setattr(evalhub.core.bounded, "IN_CHUNK", 3)
    widest_seen = []
    for size in (7, 14):
        run, images = _run_of(size)
        plan, widest_bound = _previewed_and_deleted("run", run)
        widest_seen.append(widest_bound)
        assert plan.refused is None and plan.removes == [("images", size)]
        assert not GenerationRun.objects.filter(pk=run.pk).exists()
        assert not Image.objects.filter(pk__in=images).exists()
    # No statement binds more values for a run twice the size: none lists all its images.
    assert widest_seen[0] == widest_seen[1] < 7, widest_seen


def test_a_campaign_of_more_tasks_than_a_chunk_is_previewed_and_deleted(monkeypatch):
    monkeypatch.setattr(evalhub.core.bounded, "IN_CHUNK", 3)
    widest_seen = []
    for size in (7, 14):
        campaign, tasks = _campaign_of(size)
        plan, widest_bound = _previewed_and_deleted("campaign", campaign)
        widest_seen.append(widest_bound)
        # A judgment reached by its task and by its lease is counted once.
        assert plan.refused is None and dict(plan.removes) == {
            "comparison tasks": size, "leases": 4, "judgment": 1}
        assert not ComparisonTask.objects.filter(pk__in=[t.pk for t in tasks]).exists()
        assert not Lease.objects.exists()
        # The runs compared stay, images and all.
        assert Image.objects.filter(pk__in=[t.image_a_id for t in tasks]).count() == size
    assert widest_seen[0] == widest_seen[1] < 7, widest_seen


def test_a_deleted_runs_blobs_are_sent_in_bounded_messages_and_all_cleaned_up(
        monkeypatch, tasks_run_inline, django_capture_on_commit_callbacks):
    monkeypatch.setattr(evalhub.core.bounded, "IN_CHUNK", 3)
    run = GenerationRunFactory(name="seven")
    blobs = [ImageFactory(run=run, seed=seed).blob_id for seed in range(7)]

    with django_capture_on_commit_callbacks(execute=True):
        object_delete(kind="run", obj=run)

    assert [len(args[0]) for _, args in tasks_run_inline] == [3, 3, 1]
    assert sorted(i for _, args in tasks_run_inline for i in args[0]) == sorted(blobs)
    assert not ImageBlob.objects.filter(pk__in=blobs).exists()


@pytest.mark.parametrize("kind", ["pairs", "best of 3"])
def test_refusing_a_run_many_tasks_show_costs_the_same_queries_whatever_their_number(kind):
    """The blocking tasks come back with their keys only: their campaigns are read in SQL, not
    one query per task (100,000 tasks took 55 s)."""
    counted = []
    for prompts in (2, 5):
        world = (build_campaign(runs=2, prompts=prompts, name=f"{kind} {prompts}")
                 if kind == "pairs" else
                 build_campaign(runs=3, prompts=prompts, name=f"{kind} {prompts}",
                                task_kind=TaskKind.BEST_OF_K, k=3))
        campaign_set_status(campaign=world.campaign, status=CampaignStatus.CLOSED)
        run = max(world.runs, key=lambda run: run.pk)  # best of 3: only in the sets' members
        with statements() as seen:
            plan = deletion_plan(kind="run", obj=run)
        assert "comparison tasks go only with their campaign" in plan.refused
        assert repr(world.campaign.name) in plan.refused
        counted.append(len(seen))
    assert counted[0] == counted[1], counted
