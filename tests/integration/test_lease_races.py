"""Races on PostgreSQL: concurrent annotators and double submissions, from real threads."""

import threading
import uuid

import pytest
from django.db import connection, connections

from evalhub.campaigns.leasing import NothingToRate, lease_next
from evalhub.campaigns.models import Judgment, Lease, LeaseStatus
from evalhub.campaigns.voting import VoteConflict, vote_submit
from tests.campaigns.builders import build_campaign

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _race(functions):
    """Run the functions at the same moment in threads; return results or exceptions."""
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)

    def run(index, fn):
        try:
            barrier.wait()
            results[index] = fn()
        except Exception as exc:  # the outcome under test may be an exception
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_many_annotators_racing_for_one_task_only_one_gets_it():
    assert connection.vendor == "postgresql"
    world = build_campaign(prompts=1, annotators=8, judgments_per_pair=8)
    results = _race([lambda a=a: lease_next(campaign=world.campaign, annotator=a)
                     for a in world.annotators])
    winners = [r for r in results if isinstance(r, Lease)]
    losers = [r for r in results if isinstance(r, NothingToRate)]
    assert len(winners) == 1 and len(losers) == 7, results
    assert Lease.objects.filter(status=LeaseStatus.ACTIVE).count() == 1


def test_concurrent_annotators_get_distinct_tasks():
    world = build_campaign(prompts=6, annotators=6, judgments_per_pair=1)
    results = _race([lambda a=a: lease_next(campaign=world.campaign, annotator=a)
                     for a in world.annotators])
    leases = [r for r in results if isinstance(r, Lease)]
    # skip_locked lets every annotator find a free task instead of colliding.
    assert len({lease.task_id for lease in leases}) == len(leases) == 6, results


def test_the_same_vote_submitted_twice_at_once_is_stored_once():
    world = build_campaign(prompts=1)
    annotator = world.annotators[0]
    lease = lease_next(campaign=world.campaign, annotator=annotator)
    client_id = uuid.uuid4()

    def submit():
        return vote_submit(annotator=annotator, lease_id=lease.pk, client_id=client_id,
                           answers={"overall": "left"})

    results = _race([submit] * 4)
    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(r.created for r in results) == 1
    assert Judgment.objects.count() == 1
    assert lease.task.__class__.objects.get(pk=lease.task_id).judgments_count == 1


def test_two_different_votes_on_one_lease_at_once_store_one():
    world = build_campaign(prompts=1)
    annotator = world.annotators[0]
    lease = lease_next(campaign=world.campaign, annotator=annotator)

    def submit(answer):
        return lambda: vote_submit(annotator=annotator, lease_id=lease.pk,
                                   client_id=uuid.uuid4(), answers={"overall": answer})

    results = _race([submit("left"), submit("right")])
    assert sum(isinstance(r, VoteConflict) for r in results) == 1, results
    assert Judgment.objects.count() == 1
