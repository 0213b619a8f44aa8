"""A campaign's pair policy is any policy of ``ratings.policies``, and the campaign services
call exactly that function (the one ``bench/efficiency.py`` simulates)."""

import uuid

import numpy as np
import pytest
from django.core.cache import cache

from evalhub.campaigns.building import active
from evalhub.campaigns.building.active import (
    campaign_refresh_priorities,
    campaign_votes,
    schedule_priority_refresh,
)
from evalhub.campaigns.models import ComparisonTask, JudgeKind, Judgment, Lease, PairPolicy
from evalhub.campaigns.serving.rating import rate_next
from ratings import policies
from ratings.policies import POLICIES, PairPriorities, policy_priorities
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


def _cast(task, annotator, outcome: str) -> None:
    Judgment.objects.create(task=task, campaign=task.campaign, criterion="overall",
                            outcome=outcome, judge_kind=JudgeKind.HUMAN, annotator=annotator,
                            client_id=uuid.uuid4())


def _voted_campaign(policy: str):
    world = build_campaign(runs=4, prompts=3, annotators=1, pair_policy=policy,
                           judgments_per_pair=10)
    voter = world.annotators[0]
    for k, task in enumerate(world.campaign.tasks.select_related("campaign").order_by("pk")):
        _cast(task, voter, ("a", "a", "b", "tie")[k % 4])
    return world


def test_every_campaign_pair_policy_is_a_policy_of_ratings_and_back():
    assert set(PairPolicy.values) == set(POLICIES)


@pytest.mark.parametrize("policy", sorted(set(POLICIES) - {"balanced"}))
def test_stored_priorities_are_the_pure_policy_of_the_campaign_votes(policy):
    world = _voted_campaign(policy)
    run_ids, votes = campaign_votes(campaign=world.campaign)

    stored = campaign_refresh_priorities(campaign=world.campaign)

    expected = POLICIES[policy](votes, seed=world.campaign.pk).by_ids(run_ids)
    assert stored == expected
    for task in world.campaign.tasks.all():
        assert task.priority == expected[(task.run_a_id, task.run_b_id)]


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_the_service_calls_the_function_registered_for_the_policy(policy, monkeypatch):
    world = _voted_campaign(policy)
    calls = []
    original = POLICIES[policy]

    def spy(votes, *, seed=None):
        calls.append((votes, seed))
        return original(votes, seed=seed)

    monkeypatch.setitem(policies.POLICIES, policy, spy)
    active.pair_priorities(campaign=world.campaign)

    assert len(calls) == 1
    votes, seed = calls[0]
    assert seed == world.campaign.pk
    assert votes.games.sum() == 2 * world.campaign.tasks.count()  # symmetric: each vote twice


def test_an_unknown_policy_name_is_refused():
    with pytest.raises(ValueError, match="unknown pair policy"):
        policy_priorities("nonsense", policies.PairVotes.empty(3))


def test_priority_refreshes_are_queued_for_every_policy_but_balanced(monkeypatch):
    queued = []
    monkeypatch.setattr(active, "enqueue_on_commit", lambda name, *args: queued.append(args))
    for policy in sorted(POLICIES):
        world = build_campaign(runs=2, prompts=1, pair_policy=policy)
        cache.delete(f"campaign-priorities:{world.campaign.pk}")
        assert schedule_priority_refresh(campaign=world.campaign) is (policy != "balanced")
    assert len(queued) == len(POLICIES) - 1


def test_an_infogain_campaign_serves_its_top_tier_first():
    world = build_campaign(runs=4, prompts=2, annotators=1, pair_policy="infogain",
                           judgments_per_pair=5)
    run_ids = sorted(run.pk for run in world.runs)
    matrix = np.full((4, 4), 0.5)
    matrix[1, 3] = matrix[3, 1] = 1.0
    for (run_a, run_b), value in PairPriorities.from_matrix(matrix).by_ids(run_ids).items():
        ComparisonTask.objects.filter(campaign=world.campaign, run_a_id=run_a,
                                      run_b_id=run_b).update(priority=value)

    task = rate_next(annotator=world.annotators[0], campaign_id=world.campaign.pk)

    lease = Lease.objects.select_related("task").get(pk=task["lease"])
    assert (lease.task.run_a_id, lease.task.run_b_id) == (run_ids[1], run_ids[3])


def test_a_balanced_campaign_ignores_stored_priorities():
    world = build_campaign(runs=3, prompts=1, annotators=1, pair_policy="balanced",
                           judgments_per_pair=5)
    tasks = list(world.campaign.tasks.order_by("pk"))
    ComparisonTask.objects.filter(pk=tasks[0].pk).update(priority=1.0, judgments_count=1)

    task = rate_next(annotator=world.annotators[0], campaign_id=world.campaign.pk)

    lease = Lease.objects.get(pk=task["lease"])
    assert lease.task_id != tasks[0].pk
