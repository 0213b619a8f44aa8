"""Races on PostgreSQL, from real threads each with its own connection: concurrent
annotators, double submissions, retries and undo on the one rating path production runs."""

import random
import threading
import uuid
from collections import Counter

import pytest
from django.db import connection
from django.db.models import Count, F, Q

from evalhub.campaigns.models import ComparisonTask, Judgment, Lease, LeaseStatus
from evalhub.campaigns.serving.rating import Vote, rate_next, rate_vote
from evalhub.campaigns.serving.voting import VoteConflict, vote_undo
from tests.builders import build_campaign
from tests.threads import race

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _lease(world, annotator):
    return rate_next(annotator=annotator, campaign_id=world.campaign.pk)


def _submit(world, annotator, lease_id, client_id, answer="left"):
    return rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
                     vote=Vote(client_id, lease_id, {"overall": answer})).result


def test_many_annotators_racing_for_one_task_only_one_gets_it():
    assert connection.vendor == "postgresql"
    world = build_campaign(prompts=1, annotators=8, judgments_per_pair=8)
    results = race([lambda a=a: _lease(world, a) for a in world.annotators])
    winners = [r for r in results if isinstance(r, dict) and "lease" in r]
    # Not "done": the pair is leased to the winner, and comes back if their lease ends.
    losers = [r for r in results if isinstance(r, dict) and r.get("code") == "nothing_free"]
    assert len(winners) == 1 and len(losers) == 7, results
    assert Lease.objects.filter(status=LeaseStatus.ACTIVE).count() == 1


def test_concurrent_annotators_get_distinct_tasks():
    world = build_campaign(prompts=6, annotators=6, judgments_per_pair=1)
    results = race([lambda a=a: _lease(world, a) for a in world.annotators])
    leases = Lease.objects.filter(pk__in=[r["lease"] for r in results if "lease" in r])
    # skip_locked lets every annotator find a free task instead of colliding.
    assert len({lease.task_id for lease in leases}) == len(leases) == 6, results


def test_the_same_vote_submitted_twice_at_once_is_stored_once():
    world = build_campaign(prompts=1)
    annotator = world.annotators[0]
    lease = Lease.objects.get(pk=_lease(world, annotator)["lease"])
    client_id = uuid.uuid4()

    def submit():
        return _submit(world, annotator, lease.pk, client_id)

    results = race([submit] * 4)
    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(r.created for r in results) == 1
    assert Judgment.objects.count() == 1
    assert lease.task.__class__.objects.get(pk=lease.task_id).judgments_count == 1


def test_two_different_votes_on_one_lease_at_once_store_one():
    world = build_campaign(prompts=1)
    annotator = world.annotators[0]
    lease = Lease.objects.get(pk=_lease(world, annotator)["lease"])

    def submit(answer):
        return lambda: _submit(world, annotator, lease.pk, uuid.uuid4(), answer)

    results = race([submit("left"), submit("right")])
    assert sum(isinstance(r, VoteConflict) for r in results) == 1, results
    assert Judgment.objects.count() == 1


def _annotate_until_done(world, annotator, seed: int, acknowledged: dict, undone: set,
                         lock: threading.Lock, *, undo: bool = True) -> None:
    """One annotator's page: vote with the next lease in the same call, resend some votes
    (a lost answer), undo some and vote again on the pair handed back."""
    rng = random.Random(seed)
    payload = _lease(world, annotator)
    while "lease" in payload:
        lease_id = uuid.UUID(payload["lease"])
        client_id = uuid.uuid4()
        vote = Vote(client_id, lease_id, {"overall": rng.choice(["left", "right", "tie"])})
        outcome = rate_vote(annotator=annotator, campaign_id=world.campaign.pk, vote=vote,
                            want_next=True, exclude={lease_id})
        with lock:
            acknowledged[client_id] = annotator.pk
        if rng.random() < 0.2:  # the answer was lost: the page sends the same vote again
            retry = rate_vote(annotator=annotator, campaign_id=world.campaign.pk, vote=vote,
                              want_next=True, exclude={lease_id})
            assert not retry.result.created and retry.result.judgments == \
                outcome.result.judgments
        if undo and rng.random() < 0.15:  # undo: the vote is retracted and the pair comes back
            again = vote_undo(annotator=annotator, campaign=world.campaign,
                              client_id=client_id).lease
            with lock:
                undone.add(client_id)
            if again is None:  # another annotator holds the pair now: it comes back later
                payload = outcome.next
                continue
            # The pair handed back is answered at once; the page keeps what it prefetched.
            redo = uuid.uuid4()
            rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
                      vote=Vote(redo, again.pk, {"overall": "left"}))
            with lock:
                acknowledged[redo] = annotator.pk
        payload = outcome.next


def test_annotators_racing_through_a_campaign_with_retries_and_undo_lose_and_double_nothing():
    judgments_per_pair = 3
    world = build_campaign(runs=3, prompts=8, annotators=8,
                           judgments_per_pair=judgments_per_pair)
    acknowledged: dict[uuid.UUID, int] = {}
    undone: set[uuid.UUID] = set()
    lock = threading.Lock()
    results = race([
        lambda a=a, i=i: _annotate_until_done(world, a, i, acknowledged, undone, lock)
        for i, a in enumerate(world.annotators)])
    assert all(r is None for r in results), results
    # A pair undone while someone else held it is served again later: the pages that finished
    # meanwhile come back once (a page asks for work again when it is reopened).
    for i, annotator in enumerate(world.annotators):
        _annotate_until_done(world, annotator, 100 + i, acknowledged, set(), lock, undo=False)

    live = Judgment.objects.filter(campaign=world.campaign, retracted_at__isnull=True)
    # Every acknowledged vote is stored once; undone ones are retracted, not deleted.
    stored = Counter(live.values_list("client_id", flat=True))
    assert set(stored) == set(acknowledged) - undone
    assert set(stored.values()) == {1}
    assert Judgment.objects.filter(client_id__in=undone, retracted_at__isnull=False).count() \
        == len(undone)
    # Every task's counter equals its live judgments, and none exceeds the campaign's need.
    tasks = ComparisonTask.objects.filter(campaign=world.campaign).annotate(
        live=Count("judgments", filter=Q(judgments__retracted_at__isnull=True)))
    assert not tasks.exclude(judgments_count=F("live")).exists()
    assert not tasks.filter(judgments_count__gt=judgments_per_pair).exists()
    # The campaign is done: every task has its judgments, from distinct annotators.
    assert set(tasks.values_list("judgments_count", flat=True)) == {judgments_per_pair}
    per_pair = live.values("task_id", "annotator_id").annotate(n=Count("id"))
    assert max(row["n"] for row in per_pair) == 1
    assert not Lease.objects.filter(status=LeaseStatus.ACTIVE).exists()
