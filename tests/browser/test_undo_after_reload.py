"""The undo history outlives a reload: U right after one retracts the last vote cast before it
(the server hands the same pair back), a vote still in the outbox is simply taken back, and
no more than the last 20 votes are kept."""

from __future__ import annotations

import pytest

from evalhub.campaigns.models import Judgment, Lease
from tests.browser.conftest import login
from tests.browser.pages import outbox, shown_lease, until, wait_outbox_empty
from tests.browser.world import build_world, expected_outcome, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNDO_DEPTH = 20  # rate.js


# The undo histories in localStorage, oldest entry first (a JS expression).
HISTORY = ("Object.keys(localStorage).filter(k => k.endsWith('.history'))"
           ".flatMap(k => JSON.parse(localStorage.getItem(k)))")


def stored_history(page) -> list[dict]:
    """The undo history as the page left it in localStorage, oldest first."""
    return page.evaluate(f"() => {HISTORY}")


def wait_sent(page) -> None:
    """Wait until the outbox is empty and the page has stored its history since: it stores it
    a frame after the outbox changes (rate.js), and only then are the sent votes kept by id
    alone."""
    wait_outbox_empty(page)
    page.wait_for_function(f"() => {HISTORY}.every(entry => !('task' in entry))")


def vote_id(lease_id: str) -> str:
    return str(Judgment.objects.get(lease_id=lease_id).client_id)


def retracted(lease_id: str) -> bool:
    return Judgment.objects.get(lease_id=lease_id).retracted_at is not None


def same_pair(lease_id: str, other_id: str) -> bool:
    """Both leases show one task, image A on the same side."""
    one, other = Lease.objects.get(pk=lease_id), Lease.objects.get(pk=other_id)
    return (one.task_id, one.a_side) == (other.task_id, other.a_side)


def vote(page, key: str, lease: str) -> str:
    """Answer the pair on screen by keyboard; return the lease of the pair shown next."""
    page.keyboard.press(key)
    return shown_lease(page, other_than=lease)


def undo(page, on_screen: str) -> str:
    """Press U; return the lease of the pair it puts back on screen."""
    page.keyboard.press("u")
    return shown_lease(page, other_than=on_screen)


def test_undo_right_after_a_reload_retracts_the_last_vote(context):
    world = build_world(prompts=6)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    mine = live_judgments(world.campaign).filter(annotator=world.annotator)

    first = shown_lease(page)
    second = vote(page, "1", first)
    on_screen = vote(page, "2", second)
    wait_sent(page)
    assert until(lambda: mine.count() == 2)
    # Votes the server has are stored by id alone: undo gets their pair back from the server.
    assert stored_history(page) == [{"clientId": vote_id(first)}, {"clientId": vote_id(second)}]

    page.reload()
    assert shown_lease(page) == on_screen
    again = undo(page, on_screen)
    assert until(lambda: retracted(second))
    assert [str(lease) for lease in mine.values_list("lease_id", flat=True)] == [first]
    assert again != second and same_pair(again, second)  # a fresh lease on the undone pair
    assert [entry["clientId"] for entry in stored_history(page)] == [vote_id(first)]

    # Answered again: one new judgment, under a new vote id, on the new lease.
    on_screen = vote(page, "t", again)
    wait_sent(page)
    assert until(lambda: mine.count() == 2)
    revote = Judgment.objects.get(lease_id=again)
    assert revote.retracted_at is None
    assert revote.outcome == expected_outcome(again, "tie")
    assert str(revote.client_id) != vote_id(second)
    assert Judgment.objects.filter(campaign=world.campaign).count() == 3  # + the retracted one
    assert stored_history(page) == [{"clientId": vote_id(first)}, {"clientId": vote_id(again)}]

    # After another reload, U takes back the newest vote (the new answer), and the next U the
    # first vote, which is then back on screen.
    page.reload()
    assert shown_lease(page) == on_screen
    on_screen = undo(page, on_screen)
    assert until(lambda: retracted(again)) and same_pair(on_screen, again)
    back = undo(page, on_screen)
    assert until(lambda: retracted(first)) and same_pair(back, first)
    assert not mine.exists()
    assert stored_history(page) == []
    assert Judgment.objects.filter(campaign=world.campaign).count() == 3  # none deleted


def test_a_vote_still_in_the_outbox_at_reload_is_taken_back(context):
    world = build_world(prompts=5)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")

    first = shown_lease(page)
    second = vote(page, "1", first)
    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.filter(lease_id=first).exists())

    page.route("**/votes/", lambda route: route.abort())
    on_screen = vote(page, "2", second)
    page.reload()
    assert shown_lease(page) == on_screen
    assert [item["lease"] for item in outbox(page)] == [second]
    # Only the vote the server has not seen keeps its pair: nothing else can bring it back.
    held, waiting = stored_history(page)
    assert held == {"clientId": vote_id(first)}
    assert waiting["task"]["lease"] == second

    # U takes it out of the outbox and shows the very same lease again; the server never knew.
    assert undo(page, on_screen) == second
    assert outbox(page) == []
    page.unroute("**/votes/")
    on_screen = vote(page, "4", second)
    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.filter(lease_id=second).exists())
    page.wait_for_timeout(300)  # the discarded vote, had it been sent, would have landed too
    assert Judgment.objects.filter(lease_id=second).count() == 1
    assert Judgment.objects.get(lease_id=second).outcome == expected_outcome(second, "both_bad")
    assert not Judgment.objects.filter(retracted_at__isnull=False).exists()

    # The older vote, already on the server before the reload, is still next in line.
    page.reload()
    assert shown_lease(page) == on_screen
    on_screen = undo(page, on_screen)  # takes back the new answer on the second pair
    assert until(lambda: retracted(second)) and same_pair(on_screen, second)
    back = undo(page, on_screen)
    assert until(lambda: retracted(first)) and same_pair(back, first)


def test_the_history_keeps_the_last_20_votes(context):
    world = build_world(prompts=UNDO_DEPTH + 3, sizes=((64, 64), (96, 96)))
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    mine = live_judgments(world.campaign).filter(annotator=world.annotator)

    voted = []
    lease = shown_lease(page)
    for _ in range(UNDO_DEPTH + 2):
        voted.append(lease)
        lease = vote(page, "1", lease)
    wait_sent(page)
    assert until(lambda: mine.count() == UNDO_DEPTH + 2)
    kept = voted[-UNDO_DEPTH:]
    assert stored_history(page) == [{"clientId": vote_id(lease_id)} for lease_id in kept]

    page.reload()
    on_screen = shown_lease(page)
    assert on_screen == lease
    for lease_id in reversed(kept):
        on_screen = undo(page, on_screen)
        assert same_pair(on_screen, lease_id)
        assert until(lambda lease_id=lease_id: retracted(lease_id))

    # The two oldest votes fell out of the history: nothing more to undo, both stay counted.
    page.keyboard.press("u")
    page.wait_for_function(
        "document.querySelector('#rate-status').textContent === 'Nothing to undo'")
    assert sorted(str(lease) for lease in mine.values_list("lease_id", flat=True)) == sorted(
        voted[:2])
    assert Judgment.objects.filter(campaign=world.campaign, retracted_at__isnull=False).count() \
        == UNDO_DEPTH
