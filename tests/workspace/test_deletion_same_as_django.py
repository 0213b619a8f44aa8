"""The deletion collector finds related rows by subquery (workspace/deletion.py
``_BoundedCollector``) where Django's own collector lists their keys. Both must remove the same
rows: for every kind of object in a world with most kinds of rows (pair and best-of-K tasks,
leases, metric judgments, reports, image and pair metrics, a finished metric job, a reference
set), the plan, what is left in every table after the delete, and the blobs sent for clean-up
are the same with either collector."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import transaction
from django.db.models.deletion import Collector

import evalhub.workspace.deletion as deletion
from evalhub.campaigns.models import CampaignStatus, ImageReport, JudgeKind, TaskKind
from evalhub.campaigns.services import campaign_set_status
from evalhub.evaluation.models import ImageMetric, JobStatus, MetricJob, PairMetric
from evalhub.runs.models import ReferenceSet
from tests.builders import build_campaign
from tests.factories import GenerationRunFactory, ImageFactory, JudgmentFactory, LeaseFactory

pytestmark = pytest.mark.django_db


class _DjangoCollector(Collector):
    """Django's collector as it is; ``sources`` as the deletion module reads them."""

    @property
    def sources(self):
        return [model._base_manager.filter(pk__in=[row.pk for row in rows])
                for model, rows in self.data.items()]


def _world() -> dict[str, object]:
    pairs = build_campaign(runs=3, prompts=2, name="pairs")
    sets = build_campaign(runs=3, prompts=2, name="sets", task_kind=TaskKind.BEST_OF_K, k=3)
    for world in (pairs, sets):
        campaign_set_status(campaign=world.campaign, status=CampaignStatus.CLOSED)
        task = world.tasks[0]
        LeaseFactory(task=task)
        JudgmentFactory(task=task, judge_kind=JudgeKind.METRIC, annotator=None)
        ImageReport.objects.create(task=task, image=task.image_a, side="left",
                                   annotator=world.annotators[0])
    run = pairs.runs[0]
    images = list(run.images.all())
    for image in images:
        ImageMetric.objects.create(image=image, metric="clip_score", value=0.3,
                                   backbone_id="b", weights_sha256="x", calibrated=False)
    PairMetric.objects.create(image_a=images[0], image_b=pairs.runs[1].images.first(),
                              metric="lpips", value=0.2, backbone_id="b", weights_sha256="x",
                              calibrated=False)
    loose = GenerationRunFactory(checkpoint=run.checkpoint, prompt_set=run.prompt_set,
                                 name="not compared")
    for seed, prompt in enumerate(pairs.prompts):
        ImageFactory(run=loose, prompt=prompt, seed=seed)
    reference = ReferenceSet.objects.create(project=run.project, name="real")
    reference.images.add(*[image.blob for image in images])
    job = MetricJob.objects.create(project=run.project, run=loose, reference_set=reference,
                                   metrics=["clip_score"], status=JobStatus.COMPLETED)
    return {"campaign": pairs.campaign, "best-of-k campaign": sets.campaign, "run": loose,
            "compared run": run, "checkpoint": run.checkpoint, "model": run.checkpoint.model,
            "prompt-set": run.prompt_set, "reference-set": reference, "metric-job": job}


KINDS = {"campaign": "campaign", "best-of-k campaign": "campaign", "run": "run",
         "compared run": "run", "checkpoint": "checkpoint", "model": "model",
         "prompt-set": "prompt-set", "reference-set": "reference-set",
         "metric-job": "metric-job"}


def _rows() -> dict[str, int]:
    return {model._meta.label: model._base_manager.count() for model in apps.get_models()}


def _delete_with(collector_class, monkeypatch, kind: str, obj) -> tuple:
    """The plan, the rows left per table and the blobs sent, all rolled back afterwards."""
    monkeypatch.setattr(deletion, "_BoundedCollector", collector_class)
    sent = []
    monkeypatch.setattr(deletion, "enqueue_on_commit", lambda name, *args: sent.append(args))
    with transaction.atomic():
        plan = deletion.deletion_plan(kind=kind, obj=type(obj).objects.get(pk=obj.pk))
        try:
            deletion.object_delete(kind=kind, obj=type(obj).objects.get(pk=obj.pk))
        except deletion.StillInUse as refused:
            outcome = str(refused)
        else:
            outcome = "deleted"
        left = _rows()
        transaction.set_rollback(True)
    return plan.removes, plan.refused, outcome, left, sent


@pytest.mark.parametrize("name", list(KINDS))
def test_the_bounded_collector_removes_what_djangos_removes(name, monkeypatch):
    world = _world()
    before = _rows()
    ours = _delete_with(deletion._BoundedCollector, monkeypatch, KINDS[name], world[name])
    assert _rows() == before  # rolled back
    django = _delete_with(_DjangoCollector, monkeypatch, KINDS[name], world[name])
    assert ours == django
    _, refused, outcome, left, _ = ours
    if name in ("compared run", "checkpoint", "model", "prompt-set"):
        assert refused and outcome != "deleted"  # still in use: nothing deleted
        assert left == before
    else:
        assert refused is None and outcome == "deleted"
        label = type(world[name])._meta.label
        assert left[label] == before[label] - 1
    if name == "run":
        assert left["runs.Image"] == before["runs.Image"] - 2
