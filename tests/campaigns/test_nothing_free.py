"""An annotator whose remaining tasks are all leased to other annotators (a closed tab holds
its pairs for ``lease_seconds``) is told "nothing free right now" (``done`` false, code
``nothing_free``: ask again), not that they rated everything; once those leases end the tasks
are served, and only when nothing is left for them at all is the answer ``done``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from evalhub.campaigns.models import Lease, LeaseStatus
from evalhub.campaigns.serving.rating import NOTHING_FREE, Vote, rate_next, rate_vote
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    # One pair wanting two votes, two annotators.
    return build_campaign(prompts=1, annotators=2, judgments_per_pair=2)


def _next(world, annotator, exclude=None) -> dict:
    return rate_next(annotator=annotator, campaign_id=world.campaign.pk, exclude=exclude)


def test_a_pair_held_by_another_annotator_is_nothing_free_not_done(world):
    first, second = world.annotators
    held = _next(world, first)  # leased, then the tab is closed
    assert "lease" in held
    answer = _next(world, second)
    assert answer["done"] is False and answer["code"] == NOTHING_FREE
    assert "someone else" in answer["detail"]

    # The lease runs out unvoted: the pair is served to the second annotator.
    Lease.objects.filter(pk=held["lease"]).update(expires_at=timezone.now() - timedelta(1))
    served = _next(world, second)
    assert "lease" in served
    rate_vote(annotator=second, campaign_id=world.campaign.pk,
              vote=Vote(uuid.uuid4(), uuid.UUID(served["lease"]), {"overall": "left"}))
    # Rated by them: done for them, although the pair still wants a vote from someone else.
    done = _next(world, second)
    assert done["done"] is True and "code" not in done


def test_the_api_and_a_votes_next_answer_nothing_free(world, api):
    first, second = world.annotators
    _next(world, first)
    api.force_login(second)
    answer = api.post(f"/api/v1/rate/{world.campaign.pk}/next/", {}, format="json")
    assert answer.status_code == 200
    assert answer.json()["done"] is False and answer.json()["code"] == NOTHING_FREE


def test_a_vote_whose_next_pair_is_held_by_someone_else_says_nothing_free():
    world = build_campaign(prompts=2, annotators=2, judgments_per_pair=2)
    first, second = world.annotators
    mine = _next(world, second)
    _next(world, first)  # the other pair
    outcome = rate_vote(annotator=second, campaign_id=world.campaign.pk,
                        vote=Vote(uuid.uuid4(), uuid.UUID(mine["lease"]), {"overall": "tie"}),
                        want_next=True)
    assert outcome.next["done"] is False and outcome.next["code"] == NOTHING_FREE


def test_a_pair_the_annotator_holds_and_shows_is_not_someone_elses(world):
    # The page shows its own lease and asks for one more: nothing else exists, so done (the
    # page keeps rating what it shows).
    first, _ = world.annotators
    shown = _next(world, first)
    answer = _next(world, first, exclude={uuid.UUID(shown["lease"])})
    assert answer["done"] is True


def test_pairs_that_need_no_more_votes_or_were_skipped_are_done_not_waiting(world):
    first, second = world.annotators
    skipped = _next(world, second)
    Lease.objects.filter(pk=skipped["lease"]).update(status=LeaseStatus.SKIPPED,
                                                     closed_at=timezone.now())
    _next(world, first)  # held by the first annotator; the second skipped it
    assert _next(world, second)["done"] is True


def test_the_home_page_offers_the_campaign_while_others_hold_its_pairs(world):
    first, second = world.annotators
    _next(world, first)
    client = Client()
    client.force_login(second)
    html = client.get("/").content.decode()
    assert f'href="/rate/{world.campaign.pk}/"' in html and "Start rating" in html


def test_holding_the_most_tasks_at_once_is_not_done():
    # Two tasks on their way (skips in flight) fill the cap: the page must wait, not finish.
    world = build_campaign(prompts=4, annotators=1)
    first = _next(world, world.annotator)
    second = _next(world, world.annotator, exclude={uuid.UUID(first["lease"])})
    assert "lease" in first and "lease" in second
    answer = _next(world, world.annotator,
                   exclude={uuid.UUID(first["lease"]), uuid.UUID(second["lease"])})
    assert answer["done"] is False and answer["code"] == NOTHING_FREE
    assert "hold the most tasks" in answer["detail"]
