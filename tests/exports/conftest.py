"""A campaign with known votes, for export tests.

Two runs, four prompts (categories alternate colour / counting), one image per run and
prompt, criteria overall + aesthetics: four comparison tasks, built by the suite's one builder
(tests/builders.py). Votes are stored as rows with the shared JudgmentFactory (the voting
service's counter rule) so every outcome and displayed side is known to the test.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from evalhub.campaigns.building.gold import gold_task_add
from evalhub.campaigns.models import (
    Campaign,
    ComparisonTask,
    JudgeKind,
    Judgment,
)
from tests.builders import build_campaign
from tests.factories import ImageFactory, JudgmentFactory, PromptFactory


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
             criterion: str = "overall", latency_ms: int = 1500, at=None,
             client_id: uuid.UUID | None = None) -> Judgment:
        """One human judgment in canonical terms ("a" = image A), as the voting service stores
        it (the shared JudgmentFactory: its completed lease, the one counter rule)."""
        judgment = JudgmentFactory(task=task, annotator=annotator, outcome=outcome,
                                   a_side=a_side, criterion=criterion, latency_ms=latency_ms,
                                   **({"client_id": client_id} if client_id else {}))
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
    built = build_campaign(runs=2, prompts=4, annotators=annotators, model_name="sdxl",
                           checkpoint_names=["step-0", "step-1"],
                           prompt_text=lambda i: f"prompt {i} \"q\" é", name="prefs",
                           criteria=list(criteria))
    world = World(built.campaign, built.tasks, built.runs, built.owner, built.scientist,
                  built.annotators)
    if with_gold:
        extra = PromptFactory(prompt_set=built.runs[0].prompt_set, position=99,
                              text="gold prompt")
        image_a = ImageFactory(run=built.runs[0], prompt=extra, seed=5)
        image_b = ImageFactory(run=built.runs[1], prompt=extra, seed=5)
        world.gold = gold_task_add(campaign=world.campaign, image_a=image_a, image_b=image_b,
                                   answer="a")
    return world


@pytest.fixture
def world(db) -> World:
    return build_world()
