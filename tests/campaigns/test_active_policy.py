"""The active policy serves the pairs whose order is least certain."""

import uuid

import numpy as np
import pytest

from evalhub.campaigns.building.active import campaign_refresh_priorities, interval_overlap
from evalhub.campaigns.models import JudgeKind, Judgment, Lease
from evalhub.campaigns.serving.rating import rate_next
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
