"""Undo of a vote still in the outbox. A vote never sent is taken back on the page; one sent at
least once may be stored on the server with its answer lost, so the page withdraws it (the
outbox never sends it again) and undoes it on the server by its id: the server's vote ends
retracted and the pair comes back as after any undo, or, when the server never had it, the
same lease comes back. "Vote undone" is never said while the vote still counts.

Fails on any script error or Content-Security-Policy violation of the pages (the browser's
own log lines of the requests a test drops or the server refuses aside).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid

import pytest

from evalhub.campaigns.models import Campaign, CampaignStatus, Judgment, Lease, LeaseStatus
from tests.browser.conftest import login
from tests.browser.pages import (
    HeldRequests,
    outbox,
    said,
    said_so_far,
    script_errors,
    shown_lease,
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
from tests.browser.world import build_world, expected_outcome, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VOTES = "**/votes/"
UNDO = "**/votes/undo/"

def page_until(page, predicate, timeout_s: float = 15):
    """Poll ``predicate()`` (the database, the routes' records) while the page runs: Playwright
    calls the tests' route handlers only while the test waits on it."""
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()) and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    return value


class LostAnswers:
    """The page's votes: the first one sent reaches the server and its answer is lost (the
    page sees a network failure); every later request fails on the way out, until ``heal``
    (then they go through). ``hold_next`` holds the next one on the wire instead, until
    ``release``. Records each vote's client id as it leaves the page."""

    def __init__(self, page) -> None:
        self.page = page
        self.sent: list[str] = []
        self.stored: list[int] = []  # the server's answers to what reached it
        self.healed = False
        self.holding = False
        self.held: list = []
        page.route(VOTES, self._handle)

    def _handle(self, route) -> None:
        self.sent.append(json.loads(route.request.post_data)["client_id"])
        if self.holding:
            self.holding = False
            self.held.append(route)
        elif self.healed:
            route.continue_()
        elif not self.stored:
            self.stored.append(route.fetch().status)
            route.abort()
        else:
            route.abort()

    def hold_next(self) -> None:
        self.holding = True

    def release(self) -> None:
        """The held vote reaches the server, and its answer comes back."""
        for route in self.held:
            route.continue_()
        self.held = []

    def heal(self) -> None:
        self.healed = True


def vote_lost_on_the_way_back(page) -> tuple[str, str, LostAnswers]:
    """Vote on the pair on screen; the server stores the vote, the answer is lost, and every
    resend fails: the vote waits in the outbox. Returns its lease, the lease shown next and
    the routes."""
    voted = shown_lease(page)
    votes = LostAnswers(page)
    on_screen = vote(page, "1", voted)
    assert page_until(page, lambda: votes.stored == [201])
    assert Judgment.objects.get(lease_id=voted).retracted_at is None  # it counts
    assert [item["lease"] for item in outbox(page)] == [voted]
    return voted, on_screen, votes


def open_page(context, world):
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    return page


def small_world():
    return build_world(prompts=5, tiles=False, sizes=((512, 512), (512, 512)))


def test_undo_of_a_vote_stored_with_its_answer_lost_retracts_it_on_the_server(context, errors):
    world = small_world()
    page = open_page(context, world)
    voted, on_screen, votes = vote_lost_on_the_way_back(page)
    client_id = vote_id(voted)

    undos = HeldRequests(page, UNDO)
    page.keyboard.press("u")
    # The page cannot know whether the server has the vote: it asks for the undo by the
    # vote's id, and says nothing until the answer comes.
    undos.wait_for(1)
    assert json.loads(undos.routes[0].request.post_data) == {"client_id": client_id}
    assert "Vote undone" not in said_so_far(page)
    assert page.get_attribute("#rate-app", "data-lease") == on_screen
    assert Judgment.objects.get(lease_id=voted).retracted_at is None
    # Withdrawn: kept in storage until the undo is answered, never sent again.
    assert [(item["client_id"], item["withdrawn"]) for item in outbox(page)] == [
        (client_id, True)]
    undos.release()

    # Undone on the server, and the pair back on a fresh lease, as after any undo.
    back = shown_lease(page, other_than=on_screen)
    said(page, "Vote undone")
    assert retracted(voted)
    assert back != voted and same_pair(back, voted)
    assert outbox(page) == []
    assert stored_history(page) == []

    # Back online: nothing of the undone vote is sent again, and the pair answered anew counts
    # (it used to be refused: "Not counted").
    sent_before = len(votes.sent)
    votes.heal()
    vote(page, "2", back)
    wait_outbox_empty(page)
    assert page_until(page, lambda: Judgment.objects.filter(lease_id=back).exists())
    assert client_id not in votes.sent[sent_before:]
    assert Judgment.objects.get(lease_id=back).outcome == expected_outcome(back, "right")
    assert [str(j.lease_id) for j in live_judgments(world.campaign)] == [back]
    assert retracted(voted)
    assert not [text for text in said_so_far(page) if text.startswith("Not counted")]
    assert script_errors(errors) == [] and page.evaluate("window.__violations") == []


def test_undo_of_a_vote_sent_that_never_arrived_takes_it_back_for_good(context, errors):
    world = small_world()
    page = open_page(context, world)
    voted = shown_lease(page)
    sent: list[str] = []

    def offline(route) -> None:
        sent.append(json.loads(route.request.post_data)["client_id"])
        route.abort()

    page.route(VOTES, offline)
    on_screen = vote(page, "1", voted)
    assert page_until(page, lambda: sent)
    client_id = sent[0]

    # Sent, so the page asks the server, which has no such vote: it never arrived, and its
    # own lease (still the annotator's) comes back.
    assert undo(page, on_screen) == voted
    said(page, "Vote undone")
    assert outbox(page) == []
    page.unroute(VOTES)
    vote(page, "t", voted)
    wait_outbox_empty(page)
    assert page_until(page, lambda: Judgment.objects.filter(lease_id=voted).exists())
    page.wait_for_timeout(300)  # the withdrawn vote, had it been sent again, would be in too
    judgment = Judgment.objects.get(lease_id=voted)
    assert str(judgment.client_id) != client_id
    assert judgment.outcome == expected_outcome(voted, "tie")
    assert not Judgment.objects.filter(client_id=client_id).exists()
    assert script_errors(errors) == [] and page.evaluate("window.__violations") == []


def test_undo_while_a_resend_is_on_the_wire_undoes_after_it_lands(context, errors):
    world = small_world()
    page = open_page(context, world)
    voted, on_screen, votes = vote_lost_on_the_way_back(page)
    undos: list[str] = []
    page.on("request", lambda request: undos.append(request.url)
            if request.url.endswith("/votes/undo/") else None)

    # The next resend leaves and is held on the wire; U meanwhile waits for it.
    votes.hold_next()
    page.evaluate("() => window.dispatchEvent(new Event('online'))")  # resend now
    assert page_until(page, lambda: votes.held)
    page.keyboard.press("u")
    page.wait_for_timeout(300)  # an undo sent beside the resend would be on its way by now
    assert undos == []
    assert "Vote undone" not in said_so_far(page)

    # The resend is answered (stored before: 200); then the undo goes, and retracts it.
    votes.heal()
    votes.release()
    back = shown_lease(page, other_than=on_screen)
    said(page, "Vote undone")
    assert len(undos) == 1
    assert retracted(voted) and same_pair(back, voted) and back != voted
    assert outbox(page) == []
    assert script_errors(errors) == [] and page.evaluate("window.__violations") == []


def test_an_undo_cut_off_by_a_reload_is_made_after_it(context, errors):
    world = small_world()
    page = open_page(context, world)
    voted, on_screen, votes = vote_lost_on_the_way_back(page)
    client_id = vote_id(voted)
    cut_off: list = []

    def first_held(route) -> None:
        if not cut_off:
            cut_off.append(route)  # never answered: the page reloads meanwhile
        else:
            route.continue_()

    page.route(UNDO, first_held)
    page.keyboard.press("u")
    assert page_until(page, lambda: cut_off)
    resent = len(votes.sent)  # resends before the undo carry its id too
    page.reload()
    with contextlib.suppress(Exception):  # the browser gave the request up with the page
        cut_off[0].abort()

    # The vote was withdrawn: never sent again, and its undo is made once the page is back.
    assert shown_lease(page) == on_screen
    wait_outbox_empty(page)
    assert page_until(page, lambda: retracted(voted))
    assert client_id not in votes.sent[resent:]
    assert stored_history(page) == []
    # The pair is the annotator's again, on a fresh lease (the page resumes held leases).
    assert page_until(page, lambda: Lease.objects.filter(
        task_id=Lease.objects.get(pk=voted).task_id, annotator=world.annotator,
        status=LeaseStatus.ACTIVE).exclude(pk=voted).exists())
    assert "Vote undone" not in said_so_far(page)
    assert script_errors(errors) == [] and page.evaluate("window.__violations") == []


def test_an_undo_that_cannot_reach_the_server_leaves_the_vote_to_be_sent(context, errors):
    world = small_world()
    page = open_page(context, world)
    voted, on_screen, votes = vote_lost_on_the_way_back(page)
    client_id = vote_id(voted)

    context.set_offline(True)
    page.keyboard.press("u")
    said(page, "Cannot undo while offline")
    # Nothing undone: the vote waits in the outbox to be sent, its entry is back in the history.
    assert [(item["client_id"], item["withdrawn"]) for item in outbox(page)] == [
        (client_id, False)]
    assert [entry["clientId"] for entry in stored_history(page)] == [client_id]
    assert page.get_attribute("#rate-app", "data-lease") == on_screen
    assert not retracted(voted)

    votes.heal()
    context.set_offline(False)  # "online": the outbox sends it again, stored once
    wait_sent(page)
    assert Judgment.objects.filter(client_id=client_id).count() == 1
    back = undo(page, on_screen)
    assert page_until(page, lambda: retracted(voted)) and same_pair(back, voted)
    assert "Vote undone" in said_so_far(page)
    assert script_errors(errors) == [] and page.evaluate("window.__violations") == []


def test_an_undo_on_a_paused_campaign_keeps_its_entry_and_sends_no_vote(context, errors):
    world = small_world()
    page = open_page(context, world)
    voted, _, votes = vote_lost_on_the_way_back(page)
    client_id = vote_id(voted)

    Campaign.objects.filter(pk=world.campaign.pk).update(status=CampaignStatus.PAUSED)
    page.keyboard.press("u")
    page.wait_for_selector("#rate-app[data-done='1']")
    resent = len(votes.sent)  # resends before the undo carry its id too
    # Not undone (the campaign takes nothing), not resent either: the entry waits, by its id.
    assert outbox(page) == []
    assert stored_history(page) == [{"clientId": client_id}]
    assert not retracted(voted)

    Campaign.objects.filter(pk=world.campaign.pk).update(status=CampaignStatus.ACTIVE)
    votes.heal()
    page.reload()
    shown = shown_lease(page)
    back = undo(page, shown)
    assert page_until(page, lambda: retracted(voted)) and same_pair(back, voted)
    assert client_id not in votes.sent[resent:]
    assert script_errors(errors) == [] and page.evaluate("window.__violations") == []


def test_an_undo_of_no_vote_of_the_annotator_drops_its_entry(context, errors):
    world = small_world()
    page = open_page(context, world)
    first = shown_lease(page)
    on_screen = vote(page, "1", first)
    wait_sent(page)
    # An entry the server knows nothing of (a vote refused while its undo was asked for):
    # "not one of your votes" can never change, so it must not block the votes before it.
    stranger = str(uuid.uuid4())
    page.evaluate(
        "(stranger) => { const key = Object.keys(localStorage).find(k => k.endsWith('.history'));"
        " const history = JSON.parse(localStorage.getItem(key));"
        " localStorage.setItem(key, JSON.stringify([...history, {clientId: stranger}])); }",
        stranger)
    page.reload()
    assert shown_lease(page) == on_screen
    page.keyboard.press("u")
    said(page, "That vote did not count: nothing to undo")
    assert stored_history(page) == [{"clientId": vote_id(first)}]
    back = undo(page, on_screen)
    assert page_until(page, lambda: retracted(first)) and same_pair(back, first)
    assert script_errors(errors) == [] and page.evaluate("window.__violations") == []
