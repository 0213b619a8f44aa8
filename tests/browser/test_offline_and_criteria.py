"""Votes cast offline arrive exactly once when the connection returns; multi-criterion votes
store one judgment per criterion, each mapped through the displayed sides."""

from __future__ import annotations

import pytest

from evalhub.campaigns.models import Judgment
from tests.browser.conftest import login
from tests.browser.pages import (
    outbox,
    shown_lease,
    until,
    wait_next_prefetched,
    wait_outbox_empty,
)
from tests.browser.world import build_world, expected_outcome, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_vote_cast_offline_arrives_once_when_back_online(context):
    world = build_world(prompts=4)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    first = shown_lease(page)
    behind = wait_next_prefetched(page, shown=first)

    context.set_offline(True)
    page.keyboard.press("1")
    # The prefetched pair appears without the network.
    assert shown_lease(page, other_than=first) == behind
    page.wait_for_selector("#rate-pending:not([hidden])")
    assert "1 vote waiting to send" in page.text_content("#rate-pending")
    assert [item["lease"] for item in outbox(page)] == [first]
    page.wait_for_timeout(1500)  # at least one failed retry happens meanwhile
    assert not Judgment.objects.exists()

    context.set_offline(False)
    wait_outbox_empty(page)
    page.wait_for_selector("#rate-pending", state="hidden")
    assert until(lambda: Judgment.objects.count() == 1)
    page.wait_for_timeout(500)  # a duplicate send would have landed by now
    judgment = Judgment.objects.get()
    assert str(judgment.lease_id) == first
    assert judgment.outcome == expected_outcome(first, "left")


def test_a_multi_criterion_vote_answers_each_question(context):
    criteria = ["overall", "alignment", "aesthetics"]
    world = build_world(prompts=3, criteria=criteria)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    assert page.locator(".criterion").count() == 3

    # Keyboard: each key answers the next open question; the last one sends the vote.
    lease = shown_lease(page)
    page.keyboard.press("1")
    page.keyboard.press("2")
    assert page.get_attribute("#rate-app", "data-lease") == lease  # not sent yet
    assert page.get_attribute(".criterion[data-criterion=overall] [data-answer=left]",
                              "aria-pressed") == "true"
    page.keyboard.press("b")
    keyed = {"overall": "left", "alignment": "right", "aesthetics": "both_bad"}

    # Mouse, in any order.
    mouse_lease = shown_lease(page, other_than=lease)
    clicked = {"aesthetics": "tie", "overall": "right", "alignment": "left"}
    for criterion, answer in clicked.items():
        page.click(f".criterion[data-criterion={criterion}] [data-answer={answer}]")
    shown_lease(page, other_than=mouse_lease)
    wait_outbox_empty(page)

    assert until(lambda: live_judgments(world.campaign).count() == 6)
    for lease_id, answers in ((lease, keyed), (mouse_lease, clicked)):
        stored = dict(Judgment.objects.filter(lease_id=lease_id).values_list("criterion",
                                                                              "outcome"))
        assert stored == {c: expected_outcome(lease_id, a) for c, a in answers.items()}
    client_ids = set(live_judgments(world.campaign).values_list("client_id", flat=True))
    assert len(client_ids) == 2  # one vote id per pair
