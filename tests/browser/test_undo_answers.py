"""What the page does with an undo's answer: one lost on the way (the server undid the vote)
is recognised from the server's ``vote_undone`` code, so the history moves on to the vote
before it; a paused or closed campaign's refusal stops the page as a refused vote does.

Fails on any script error or Content-Security-Policy violation of the pages (the browser's
own log lines of the requests a test drops or the server refuses aside).
"""

from __future__ import annotations

import pytest

from evalhub.campaigns.models import Campaign, CampaignStatus, Judgment
from tests.browser.conftest import login
from tests.browser.pages import (
    said,
    said_so_far,
    script_errors,
    shown_lease,
    until,
    wait_outbox_empty,
)
from tests.browser.test_undo_after_reload import (
    retracted,
    same_pair,
    stored_history,
    undo,
    vote,
    vote_id,
    wait_sent,
)
from tests.browser.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNDO = "**/votes/undo/"


def two_votes(page, world) -> tuple[str, str, str]:
    """Vote on two pairs and wait until the server has both; their leases and the lease on
    screen."""
    first = shown_lease(page)
    second = vote(page, "1", first)
    on_screen = vote(page, "2", second)
    wait_sent(page)
    assert until(lambda: Judgment.objects.filter(lease_id__in=[first, second]).count() == 2)
    return first, second, on_screen


def lose_answers(page, *, times: int | None = None) -> list[int]:
    """Every undo (or the first ``times``) reaches the server, and its answer is lost on the
    way back: the page sees a network failure. Returns the statuses the server answered."""
    answered: list[int] = []

    def handle(route) -> None:
        if times is not None and len(answered) >= times:
            route.continue_()
            return
        answered.append(route.fetch().status)
        route.abort()

    page.route(UNDO, handle)
    return answered


def test_an_undo_whose_answer_was_lost_shows_its_pair_and_the_next_u_reaches_the_vote_before(
        context, errors):
    world = build_world(prompts=6)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    first, second, on_screen = two_votes(page, world)

    answered = lose_answers(page, times=1)
    back = undo(page, on_screen)
    # The server undid the vote; the page asked again, was told so (vote_undone), and shows
    # the pair that undo handed back, as if its answer had come.
    assert answered == [201]
    assert until(lambda: retracted(second)) and same_pair(back, second)
    said(page, "Vote undone")
    assert stored_history(page) == [{"clientId": vote_id(first)}]

    # The next U takes back the vote before it.
    again = undo(page, back)
    assert until(lambda: retracted(first)) and same_pair(again, first)
    assert stored_history(page) == []
    assert script_errors(errors) == [] and page.evaluate("window.__violations") == []


def test_an_undo_answered_undone_after_a_reload_moves_on_to_the_vote_before(context, errors):
    world = build_world(prompts=6)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    first, second, on_screen = two_votes(page, world)

    # Offline on the way back for every try: the page cannot know, and keeps the entry.
    answered = lose_answers(page)
    page.keyboard.press("u")
    said(page, "Cannot undo while offline")
    assert answered[0] == 201 and set(answered[1:]) == {400}, answered
    assert until(lambda: retracted(second))
    assert [entry["clientId"] for entry in stored_history(page)] == [vote_id(first),
                                                                     vote_id(second)]

    # Back online, after a reload: U is answered "undone already", the entry goes, and the next
    # U reaches the vote before it (it used to answer "Could not undo that vote" for ever).
    page.unroute(UNDO)
    page.reload()
    assert shown_lease(page) == on_screen
    page.keyboard.press("u")
    said(page, "That vote was undone already")
    assert stored_history(page) == [{"clientId": vote_id(first)}]
    back = undo(page, page.get_attribute("#rate-app", "data-lease"))
    assert until(lambda: retracted(first)) and same_pair(back, first)
    assert stored_history(page) == []
    assert script_errors(errors) == [] and page.evaluate("window.__violations") == []


def test_an_undo_in_a_closed_campaign_says_it_is_over_at_once(context, errors):
    world = build_world(prompts=4, tiles=False, sizes=((512, 512), (512, 512)))
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    voted = shown_lease(page)
    vote(page, "1", voted)
    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.filter(lease_id=voted).exists())

    Campaign.objects.filter(pk=world.campaign.pk).update(status=CampaignStatus.CLOSED)
    page.keyboard.press("u")
    # Stopped on the refusal itself, not on the next vote key.
    page.wait_for_selector("#rate-app[data-done='1']")
    page.wait_for_function("() => document.querySelector('#rate-done-title').textContent"
                           " === 'This campaign is over'")
    assert page.text_content("#rate-done-message") == (
        "Campaign 'Shapes study' is over: it was closed and takes no more votes.")
    assert page.is_hidden("#rate-stage")
    assert "Could not undo that vote" not in said_so_far(page)
    assert Judgment.objects.get(lease_id=voted).retracted_at is None
    assert script_errors(errors) == [] and page.evaluate("window.__violations") == []


def test_an_undo_refused_while_paused_is_kept_for_when_the_campaign_reopens(context):
    world = build_world(prompts=4, tiles=False, sizes=((512, 512), (512, 512)))
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    voted = shown_lease(page)
    vote(page, "1", voted)
    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.filter(lease_id=voted).exists())

    Campaign.objects.filter(pk=world.campaign.pk).update(status=CampaignStatus.PAUSED)
    page.keyboard.press("u")
    page.wait_for_selector("#rate-app[data-done='1']")
    page.wait_for_function("() => document.querySelector('#rate-done-title').textContent"
                           " === 'This campaign is paused'")
    assert stored_history(page) == [{"clientId": vote_id(voted)}]

    Campaign.objects.filter(pk=world.campaign.pk).update(status=CampaignStatus.ACTIVE)
    page.reload()
    back = undo(page, shown_lease(page))
    assert until(lambda: retracted(voted)) and same_pair(back, voted)


def test_a_vote_undone_before_its_resend_leaves_quietly(context, errors):
    """The vote reached the server but its answer was lost, so the outbox sends it again; in
    between it was undone (in another tab sharing this outbox, say). The resend is answered
    409 vote_undone: the vote stays undone and leaves the outbox and the history, and the page
    does not call it "not counted: answered in another tab"."""
    from evalhub.campaigns.serving.rating import rate_undo

    world = build_world(prompts=4, tiles=False, sizes=((512, 512), (512, 512)))
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    voted = shown_lease(page)
    resends: list[int] = []

    def stored_then_undone(route) -> None:
        if resends:  # the resend, answered as the server answers it
            response = route.fetch()
            resends.append(response.status)
            route.fulfill(response=response)
            return
        first = route.fetch()
        stored = Judgment.objects.get(lease_id=voted)
        rate_undo(annotator=world.annotator, campaign=world.campaign,
                  client_id=stored.client_id)
        resends.append(first.status)
        route.abort()

    page.route("**/votes/", stored_then_undone)
    vote(page, "1", voted)
    wait_outbox_empty(page)
    assert resends == [201, 409]
    assert Judgment.objects.get(lease_id=voted).retracted_at is not None
    page.wait_for_function("() => !Object.keys(localStorage).filter(k => k.endsWith('.history'))"
                           ".flatMap(k => JSON.parse(localStorage.getItem(k))).length")
    assert not [text for text in said_so_far(page) if text.startswith("Not counted")]
    assert [e for e in script_errors(errors) if "409" not in e] == []
