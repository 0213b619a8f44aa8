"""Leaderboards of campaigns with many voted tasks: no statement binds one value per task.

A filter on a list of task ids binds one parameter per id, and one statement may bind at most
65,535 (PostgreSQL; SQLite 32,766): a campaign of 100,000 voted tasks failed there. The tasks
people voted on are selected by a subquery instead, when the metric judges are compared with
people (``_judge_agreement``) and when best-of-K rankings are read (``kwise_votes``). Each test
builds two campaigns, one twice the other's size, and checks that the values a statement binds
do not grow with the number of tasks, and that the figures are the ones the votes give.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from evalhub.campaigns.models import ComparisonTask, JudgeKind, Judgment, TaskImage, TaskKind
from evalhub.leaderboards.filters import LeaderboardFilters
from evalhub.leaderboards.kwise import kwise_votes
from evalhub.leaderboards.selectors import filtered_judgments, leaderboard_compute
from evalhub.leaderboards.services import metric_judges_run
from evalhub.runs.models import Image
from tests.builders import build_campaign
from tests.factories import count_judgments
from tests.leaderboards.helpers import set_image_metric
from tests.statements import statements, widest

pytestmark = pytest.mark.django_db


def _human(task: ComparisonTask, annotator, outcome: str, **fields) -> Judgment:
    return Judgment(task=task, campaign_id=task.campaign_id, criterion="overall",
                    outcome=outcome, judge_kind=JudgeKind.HUMAN, annotator=annotator,
                    a_side="left", **fields)


def _judge_agreement_with_people(prompts: int) -> tuple[int, int, int]:
    """(tasks, the clip-score judge's (n, agree) against the human majority, most values a
    statement bound while the leaderboard was computed), on a campaign where people side with
    the metric judge on every task but each fourth."""
    world = build_campaign(runs=3, prompts=prompts, annotators=3, criteria=["overall"])
    for run, score in zip(world.runs, (30.0, 20.0, 10.0), strict=True):
        for k, image in enumerate(Image.objects.filter(run=run).order_by("id")):
            set_image_metric(image, "clip_score", score + 0.01 * k, calibrated=False)
    metric_judges_run(campaign=world.campaign, metric="clip_score")
    tasks = list(ComparisonTask.objects.filter(campaign=world.campaign, is_gold=False)
                 .order_by("id"))
    votes = []
    for k, task in enumerate(tasks):
        # The metric prefers image A (the lower run id scores higher); people agree 2:1
        # except on every fourth task, where the majority says B.
        majority, minority = ("b", "a") if k % 4 == 0 else ("a", "b")
        votes += [_human(task, annotator, outcome) for annotator, outcome in
                  zip(world.annotators, (majority, majority, minority), strict=True)]
    count_judgments(Judgment.objects.bulk_create(votes))
    with statements() as seen:
        board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    judge = board.judge_agreement["clip_score"]
    assert judge.n == len(tasks)
    assert judge.agree == len(tasks) - len(range(0, len(tasks), 4))
    assert sum(p.n for p in judge.by_pair) == len(tasks)
    return len(tasks), judge.agree, widest(seen)


def test_metric_judges_are_compared_with_people_without_binding_the_voted_task_ids():
    small_tasks, _, small_most = _judge_agreement_with_people(prompts=6)
    large_tasks, _, large_most = _judge_agreement_with_people(prompts=12)
    assert large_tasks == 2 * small_tasks
    # A list of the voted tasks' ids would bind 36 values on the larger campaign.
    assert large_most == small_most < small_tasks


def _ranked_campaign_votes(prompts: int) -> tuple[int, int]:
    """(tasks, most values a statement bound reading the rankings), on a best-of-4 campaign
    where each of two annotators ranks every task in full; checks the patterns read."""
    world = build_campaign(runs=4, prompts=prompts, annotators=2, task_kind=TaskKind.BEST_OF_K,
                           k=4, rank_all=True, judgments_per_pair=2)
    tasks = list(ComparisonTask.objects.filter(campaign=world.campaign, is_gold=False))
    rng = np.random.default_rng(prompts)
    votes = []
    for task in tasks:
        for annotator in world.annotators:
            order = [int(p) for p in rng.permutation(4)]
            votes.append(_human(task, annotator, "ranked", ranking=order, shown_order=order))
    count_judgments(Judgment.objects.bulk_create(votes))
    index = {run.pk: i for i, run in enumerate(world.runs)}
    qs = filtered_judgments(campaign=world.campaign, filters=LeaderboardFilters())
    with statements() as seen:
        kwise = kwise_votes(qs, index, uncategorised="(none)")

    # The patterns the votes give: the runs shown, and the picks but the forced last one.
    expected: Counter = Counter()
    for vote in votes:
        run_at = dict(TaskImage.objects.filter(task_id=vote.task_id)
                      .values_list("position", "run_id"))
        shown = tuple(sorted(index[run] for run in run_at.values()))
        expected[(shown, tuple(index[run_at[p]] for p in vote.ranking[:3]))] += 1
    assert kwise is not None and kwise.votes == len(votes)
    assert kwise.patterns == dict(expected)
    assert kwise.counts.sum() == 6 * len(votes)  # a full ranking of 4 implies 6 pairs
    return len(tasks), widest(seen)


def test_best_of_k_rankings_are_read_without_binding_the_voted_task_ids():
    small_tasks, small_most = _ranked_campaign_votes(prompts=6)
    large_tasks, large_most = _ranked_campaign_votes(prompts=12)
    assert large_tasks == 2 * small_tasks
    assert large_most == small_most < small_tasks
