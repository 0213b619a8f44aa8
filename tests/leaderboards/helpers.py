"""Simulated votes written straight into the database, for leaderboard tests.

Rows follow the voting service's counter rule (tests.factories.count_judgments), as every
vote written as rows in the suite does.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from evalhub.campaigns.models import ComparisonTask, JudgeKind, Judgment
from evalhub.evaluation.models import ImageMetric, RunMetric
from tests.factories import JudgmentFactory, count_judgments


def cast(task: ComparisonTask, annotator, outcome: str, *, a_side: str = "left",
         criterion: str = "overall", created_at: datetime | None = None) -> Judgment:
    judgment = JudgmentFactory(task=task, annotator=annotator, outcome=outcome, a_side=a_side,
                               criterion=criterion)
    if created_at is not None:
        Judgment.objects.filter(pk=judgment.pk).update(created_at=created_at)
    return judgment


def bt_outcome(rng: np.random.Generator, elo_a: float, elo_b: float) -> str:
    p_a = 1.0 / (1.0 + 10 ** ((elo_b - elo_a) / 400.0))
    return "a" if rng.random() < p_a else "b"


def simulate_votes(world, strengths: dict[int, float], *, seed: int = 0,
                   annotators=None, criterion: str = "overall",
                   override: dict[str, dict[int, float]] | None = None) -> int:
    """Every annotator votes on every non-gold task; outcomes from Bradley-Terry strengths.

    ``override`` maps a prompt category to other strengths (to make a run lose a category).
    """
    rng = np.random.default_rng(seed)
    count = 0
    rows = []
    # In key order: a table emptied by DELETE (tests/conftest.py) fills its free space again,
    # so an unordered scan's order, and with it each task's draws, would vary between runs.
    tasks = (ComparisonTask.objects.filter(campaign=world.campaign, is_gold=False)
             .select_related("prompt").order_by("pk"))
    for task in tasks:
        table = (override or {}).get(task.prompt.category, strengths)
        for annotator in annotators or world.annotators:
            side = "left" if rng.random() < 0.5 else "right"
            rows.append(Judgment(task=task, campaign_id=task.campaign_id, criterion=criterion,
                                 outcome=bt_outcome(rng, table[task.run_a_id],
                                                    table[task.run_b_id]),
                                 judge_kind=JudgeKind.HUMAN, annotator=annotator, a_side=side))
            count += 1
    count_judgments(Judgment.objects.bulk_create(rows))
    return count


def set_run_metric(run, metric: str, value: float, *, calibrated: bool = True) -> RunMetric:
    return RunMetric.objects.create(run=run, metric=metric, value=value, calibrated=calibrated,
                                    backbone_id="test-backbone", weights_sha256="0" * 64,
                                    n_images=10)


def set_image_metric(image, metric: str, value: float, *, calibrated: bool = True
                     ) -> ImageMetric:
    return ImageMetric.objects.create(image=image, metric=metric, value=value,
                                      calibrated=calibrated, backbone_id="test-backbone",
                                      weights_sha256="0" * 64)
