"""The active policy serves the pairs whose order is least certain; the serving order is the one
``ratings.policies.serve_pairs`` simulates."""

import uuid

import numpy as np
import pytest
from django.db.models import F

from evalhub.campaigns.building.active import (
    campaign_refresh_priorities,
    campaign_votes,
    interval_overlap,
)
from evalhub.campaigns.models import ComparisonTask, JudgeKind, Judgment, Lease
from evalhub.campaigns.serving.rating import rate_next
from ratings.policies import PairPriorities, active_priorities, serve_pairs
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


def test_interval_overlap_is_one_for_nested_and_zero_for_disjoint_intervals():
    lower, upper = np.array([0.0, 1.0, 10.0]), np.array([5.0, 2.0, 12.0])
    assert interval_overlap(lower, upper, 0, 1) == 1.0
    assert interval_overlap(lower, upper, 0, 2) == 0.0
    assert interval_overlap(np.array([0.0, 3.0]), np.array([4.0, 5.0]), 0, 1) == 0.5


def _cast(task, annotator, outcome: str) -> None:
    Judgment.objects.create(task=task, campaign=task.campaign, criterion="overall",
                            outcome=outcome, judge_kind=JudgeKind.HUMAN, annotator=annotator,
                            client_id=uuid.uuid4())


def test_votes_move_the_next_task_to_the_uncertain_pair():
    world = build_campaign(runs=3, prompts=12, annotators=1, pair_policy="active",
                           judgments_per_pair=50)
    strong, mid, weak = world.runs
    voter = world.annotators[0]
    tasks = list(world.campaign.tasks.select_related("campaign"))
    by_pair = {}
    for task in tasks:
        by_pair.setdefault((task.run_a_id, task.run_b_id), []).append(task)
    # The strong run beats both others every time; mid vs weak is a coin flip.
    for task in by_pair[(strong.pk, mid.pk)] + by_pair[(strong.pk, weak.pk)]:
        _cast(task, voter, "a")
    for k, task in enumerate(by_pair[(mid.pk, weak.pk)][:6]):
        _cast(task, voter, "a" if k % 2 else "b")

    priorities = campaign_refresh_priorities(campaign=world.campaign)

    assert max(priorities, key=priorities.get) == (mid.pk, weak.pk)
    other = build_campaign(runs=2, prompts=1).annotators[0]
    world.campaign.project.memberships.create(user=other, role="annotator")
    task = rate_next(annotator=other, campaign_id=world.campaign.pk)
    lease = Lease.objects.get(pk=task["lease"])
    assert (lease.task.run_a_id, lease.task.run_b_id) == (mid.pk, weak.pk)


def test_without_votes_every_pair_has_top_priority():
    world = build_campaign(runs=3, prompts=2, pair_policy="active")
    priorities = campaign_refresh_priorities(campaign=world.campaign)
    assert set(priorities.values()) == {1.0} and len(priorities) == 3


def test_the_stored_priorities_are_the_pure_policy_of_the_campaign_votes():
    world = build_campaign(runs=3, prompts=4, annotators=1, pair_policy="active",
                           judgments_per_pair=10)
    voter = world.annotators[0]
    for k, task in enumerate(world.campaign.tasks.select_related("campaign")):
        _cast(task, voter, ("a", "b", "tie", "both_bad")[k % 4])
    run_ids, votes = campaign_votes(campaign=world.campaign)
    assert votes.games.sum() == 2 * 12 and votes.ties.sum() == 2 * 6
    stored = campaign_refresh_priorities(campaign=world.campaign)
    assert stored == active_priorities(votes, seed=world.campaign.pk).by_ids(run_ids)
    for task in world.campaign.tasks.all():
        assert task.priority == stored[(task.run_a_id, task.run_b_id)]


def test_leasing_serves_the_pair_the_simulated_serving_order_picks():
    """Top priority first, then the pair whose tasks hold the fewest judgments."""
    world = build_campaign(runs=3, prompts=2, annotators=1, pair_policy="active",
                           judgments_per_pair=5)
    run_ids = sorted(run.pk for run in world.runs)
    matrix = np.array([[0, 1.0, 1.0], [1.0, 0, 0.5], [1.0, 0.5, 0]])
    priorities = PairPriorities.from_matrix(matrix)
    for (run_a, run_b), value in priorities.by_ids(run_ids).items():
        ComparisonTask.objects.filter(campaign=world.campaign, run_a_id=run_a,
                                      run_b_id=run_b).update(priority=value)
    # Both tasks of the first top pair have a judgment; the second top pair has none.
    first_pair = ComparisonTask.objects.filter(campaign=world.campaign, run_a_id=run_ids[0],
                                               run_b_id=run_ids[1])
    first_pair.update(judgments_count=F("judgments_count") + 1)
    served = serve_pairs(priorities, [2, 0, 0], 1, np.random.default_rng(0), tasks_per_pair=2)
    expected = (run_ids[int(priorities.i[served[0]])], run_ids[int(priorities.j[served[0]])])

    task = rate_next(annotator=world.annotators[0], campaign_id=world.campaign.pk)
    lease = Lease.objects.select_related("task").get(pk=task["lease"])
    assert (lease.task.run_a_id, lease.task.run_b_id) == expected == (run_ids[0], run_ids[2])
