"""A campaign with known votes, for export tests.

Two runs, four prompts (categories alternate colour / counting), one image per run and
prompt, criteria overall + aesthetics: four comparison tasks. Votes are stored directly as
Lease + Judgment rows so every outcome and displayed side is known to the test.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from evalhub.campaigns.building.gold import gold_task_add
from evalhub.campaigns.models import (
    Campaign,
    ComparisonTask,
    JudgeKind,
    Judgment,
    Lease,
    LeaseStatus,
)
from evalhub.campaigns.services import campaign_create
from evalhub.projects.models import Role
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    GenModelFactory,
    ImageFactory,
    MembershipFactory,
    ProjectFactory,
    PromptFactory,
    PromptSetFactory,
)


@dataclass
class World:
    campaign: Campaign
    tasks: list[ComparisonTask]
    runs: list
    owner: object
    scientist: object
    annotators: list
    gold: ComparisonTask | None = None
    judgments: list[Judgment] = field(default_factory=list)

    def vote(self, task: ComparisonTask, annotator, outcome: str, *, a_side: str = "left",
             criterion: str = "overall", latency_ms: int = 1500, at=None) -> Judgment:
        """One human vote in canonical terms ("a" = image A), as the voting service stores it."""
        lease = Lease.objects.create(task=task, campaign=self.campaign, annotator=annotator,
                                     a_side=a_side, status=LeaseStatus.COMPLETED,
                                     expires_at=timezone.now() + timedelta(minutes=3))
        judgment = Judgment.objects.create(
            task=task, campaign=self.campaign, criterion=criterion, outcome=outcome,
            judge_kind=JudgeKind.HUMAN, annotator=annotator, lease=lease, a_side=a_side,
            latency_ms=latency_ms, client_id=uuid.uuid4())
        if criterion == "overall":  # one vote answers every criterion; counted once
            ComparisonTask.objects.filter(pk=task.pk).update(
                judgments_count=F("judgments_count") + 1)
        if at is not None:
            Judgment.objects.filter(pk=judgment.pk).update(created_at=at)
            judgment.refresh_from_db()
        self.judgments.append(judgment)
        return judgment

    def metric_vote(self, task: ComparisonTask, outcome: str, *, metric: str = "clip_score",
                    criterion: str = "overall", calibrated: bool | None = True) -> Judgment:
        return Judgment.objects.create(task=task, campaign=self.campaign, criterion=criterion,
                                       outcome=outcome, judge_kind=JudgeKind.METRIC,
                                       metric_name=metric, metric_calibrated=calibrated)


def build_world(*, annotators: int = 3, criteria=("overall", "aesthetics"),
                with_gold: bool = False) -> World:
    project = ProjectFactory()
    prompt_set = PromptSetFactory(project=project)
    prompts = [PromptFactory(prompt_set=prompt_set, position=i, text=f"prompt {i} \"q\" é",
                             category="counting" if i % 2 else "colour") for i in range(4)]
    model = GenModelFactory(project=project, name="sdxl")
    runs = []
    for index in range(2):
        run = GenerationRunFactory(checkpoint=CheckpointFactory(model=model, name=f"step-{index}"),
                                   prompt_set=prompt_set, name=f"run-{index}")
        for prompt in prompts:
            ImageFactory(run=run, prompt=prompt, seed=0)
        runs.append(run)
    owner = MembershipFactory(project=project, role=Role.OWNER).user
    scientist = MembershipFactory(project=project, role=Role.SCIENTIST).user
    members = [MembershipFactory(project=project, role=Role.ANNOTATOR).user
               for _ in range(annotators)]
    campaign = campaign_create(project=project, name="prefs", runs=runs, criteria=criteria,
                               build_now=True)
    tasks = list(campaign.tasks.order_by("prompt__position"))
    world = World(campaign, tasks, runs, owner, scientist, members)
    if with_gold:
        extra = PromptFactory(prompt_set=prompt_set, position=99, text="gold prompt")
        image_a = ImageFactory(run=runs[0], prompt=extra, seed=5)
        image_b = ImageFactory(run=runs[1], prompt=extra, seed=5)
        world.gold = gold_task_add(campaign=campaign, image_a=image_a, image_b=image_b,
                                   answer="a")
    return world


@pytest.fixture
def world(db) -> World:
    return build_world()
