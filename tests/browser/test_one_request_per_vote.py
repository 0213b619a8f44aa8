"""Once the page has its first pairs, every vote costs one request: the vote's answer brings
the pair after next, so the page never asks next/ separately while votes flow."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.conftest import login
from tests.browser.pages import shown_lease, until, wait_outbox_empty
from tests.browser.world import build_world, expected_outcome, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEXT = re.compile(r"/api/v1/rate/\d+/next/$")
VOTES = re.compile(r"/api/v1/rate/\d+/votes/$")


def test_each_vote_brings_the_next_pair_in_its_own_answer(context):
    world = build_world(prompts=8)
    page = context.new_page()
    lease_requests, vote_bodies, in_flight = [], [], set()
    page.on("request", lambda request: in_flight.add(request) if "/api/" in request.url else None)
    page.on("requestfinished", lambda request: in_flight.discard(request))
    page.on("requestfailed", lambda request: in_flight.discard(request))
    page.on("request", lambda request: (
        lease_requests.append(request.url) if NEXT.search(request.url) else
        vote_bodies.append(json.loads(request.post_data)) if VOTES.search(request.url)
        else None))
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")

    cast, shown = {}, [""]
    for key, answer in [("1", "left"), ("2", "right"), ("t", "tie"), ("1", "left")]:
        shown.append(shown_lease(page, other_than=shown[-1]))
        # An annotator takes a second or more per pair: by then the previous vote and the
        # lease of the pair behind this one have been answered.
        wait_outbox_empty(page)
        while in_flight:
            page.wait_for_timeout(20)  # (lets Playwright deliver the request events)
        page.keyboard.press(key)
        cast[shown[-1]] = answer
    shown.append(shown_lease(page, other_than=shown[-1]))
    wait_outbox_empty(page)

    assert until(lambda: live_judgments(world.campaign).count() == len(cast))
    assert {str(j.lease_id): j.outcome for j in live_judgments(world.campaign)} == {
        lease: expected_outcome(lease, answer) for lease, answer in cast.items()}
    # One lease request to start with (the pair behind the first: the first came in the page
    # itself), then none: each of the four votes asked for the next pair itself, excluding the
    # pairs the page holds (its own, still in the outbox, and the one that replaced it on
    # screen).
    assert len(lease_requests) == 1
    assert [body["lease"] for body in vote_bodies] == shown[1:5]
    for index, body in enumerate(vote_bodies, start=1):
        assert {shown[index], shown[index + 1]} <= set(body["next"]["exclude"])
