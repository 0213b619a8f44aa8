"""One press is one judgment: a double tap or a held key never votes on the task behind; a
refused vote leaves nothing to undo; a paused or closed campaign says so instead of "finished";
on a pair asked two questions, undo takes back the last answer first."""

from __future__ import annotations

import json
import uuid

import pytest

from evalhub.campaigns.models import Campaign, CampaignStatus, Judgment, Lease, LeaseStatus
from tests.browser.conftest import login
from tests.browser.pages import (
    page_clock_s,
    press_at,
    shown_lease,
    until,
    wait_next_prefetched,
    wait_outbox_empty,
)
from tests.browser.world import build_world, expected_outcome, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _history(page, world) -> list[str]:
    key = f"evalhub.rate.v1.{world.campaign.pk}.{world.annotator.pk}.history"
    return [entry["clientId"] for entry in json.loads(page.evaluate(
        f"localStorage.getItem({json.dumps(key)}) || '[]'"))]


def test_a_double_tap_or_a_held_key_casts_one_vote(context, settings):
    settings.EVALHUB_RATE_INPUT_GUARD_MS = 150  # the default
    world = build_world(prompts=6, tiles=False, sizes=((512, 512), (512, 512)))
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    first = shown_lease(page)
    wait_next_prefetched(page, shown=first)  # the next pair is drawn within a frame of a vote
    # Past the guard of the pair on screen (a prefetch can finish within its 150 ms, and a key
    # the guard swallows here would be a double press of the test's making).
    page.wait_for_timeout(200)

    # A double tap 40 ms apart, as the keyboard timed it: the second press is meant for the
    # pair already voted on, however late a loaded renderer gets to it (here, once the next
    # pair has been up for longer than the guard).
    tap = page_clock_s(page)
    press_at(page, "1", tap)
    page.wait_for_timeout(300)
    press_at(page, "1", tap + 0.040)
    second = shown_lease(page, other_than=first)
    wait_outbox_empty(page)
    assert until(lambda: live_judgments(world.campaign).count() == 1)
    assert list(live_judgments(world.campaign).values_list("lease_id", flat=True)) == [
        uuid.UUID(first)]

    wait_next_prefetched(page, shown=second)
    page.wait_for_timeout(200)  # past the second pair's guard, as above
    page.keyboard.down("2")
    page.wait_for_timeout(300)  # past the guard: only the key's repeat now
    page.keyboard.down("2")  # repeat=true, as a held key sends
    page.keyboard.down("2")
    page.keyboard.up("2")
    third = shown_lease(page, other_than=second)
    wait_outbox_empty(page)
    page.wait_for_timeout(300)
    assert live_judgments(world.campaign).count() == 2
    assert page.get_attribute("#rate-app", "data-lease") == third

    page.wait_for_timeout(200)  # a person's next judgment, after looking: counted
    page.keyboard.press("1")
    shown_lease(page, other_than=third)
    wait_outbox_empty(page)
    assert until(lambda: live_judgments(world.campaign).count() == 3)


def test_a_paused_campaign_stops_the_page_and_its_refused_vote_leaves_nothing_to_undo(context):
    world = build_world(prompts=6, tiles=False, sizes=((512, 512), (512, 512)))
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    voted = shown_lease(page)
    page.keyboard.press("1")
    on_screen = shown_lease(page, other_than=voted)
    wait_outbox_empty(page)
    stored = Judgment.objects.get(lease_id=voted)

    Campaign.objects.filter(pk=world.campaign.pk).update(status=CampaignStatus.PAUSED)
    page.keyboard.press("2")
    # The refusal comes back through the outbox (sent after the next frame): on a loaded
    # machine that can take a while.
    page.wait_for_selector("#rate-app[data-done='1']", timeout=45_000)
    # Paused: it may open again, and a reload then resumes (the title follows the campaign's
    # status, which the page reads after the refusal).
    page.wait_for_function("() => document.querySelector('#rate-done-title').textContent"
                           " === 'This campaign is paused'")
    assert page.text_content("#rate-done-message") == (
        "Campaign 'Shapes study' is paused, not open for rating until it is resumed."
        " Reload this page once the campaign is open.")
    assert "finished" not in page.text_content("#rate-count")
    assert "campaign not open" in page.text_content("#rate-count")
    assert not Judgment.objects.filter(lease_id=on_screen).exists()
    assert _history(page, world) == [str(stored.client_id)]  # the refused vote is gone

    # Reopened: undo reaches the vote that was stored (the refused one no longer blocks it).
    Campaign.objects.filter(pk=world.campaign.pk).update(status=CampaignStatus.ACTIVE)
    page.reload()
    shown = shown_lease(page)
    page.keyboard.press("u")
    shown_lease(page, other_than=shown)
    assert until(lambda: Judgment.objects.get(pk=stored.pk).retracted_at is not None)


def test_a_skip_on_a_closed_campaign_is_not_reported_as_skipped(context):
    world = build_world(prompts=4, tiles=False, sizes=((512, 512), (512, 512)))
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    Campaign.objects.filter(pk=world.campaign.pk).update(status=CampaignStatus.CLOSED)
    page.keyboard.press("s")
    # The refusal comes back through the outbox (sent after the next frame): on a loaded
    # machine that can take a while.
    page.wait_for_selector("#rate-app[data-done='1']", timeout=45_000)
    # Closed: over for good, so no "reload once it is open".
    page.wait_for_function("() => document.querySelector('#rate-done-title').textContent"
                           " === 'This campaign is over'")
    assert page.text_content("#rate-done-message") == (
        "Campaign 'Shapes study' is over: it was closed and takes no more votes.")
    page.wait_for_function("() => / · campaign over$/.test("
                           "document.querySelector('#rate-count').textContent)")
    assert Lease.objects.get(pk=lease).status == LeaseStatus.ACTIVE


def test_undo_on_a_pair_asked_two_questions_takes_back_the_last_answer_first(context):
    world = build_world(prompts=4, criteria=("overall", "alignment"), tiles=False,
                        sizes=((512, 512), (512, 512)))
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    first = shown_lease(page)
    page.keyboard.press("1")
    page.keyboard.press("2")  # both questions answered: the vote is cast
    second = shown_lease(page, other_than=first)
    wait_outbox_empty(page)

    page.keyboard.press("2")  # the first question of the second pair
    assert page.get_attribute(
        ".criterion[data-criterion=overall] button[data-answer=right]", "aria-pressed") == "true"
    page.keyboard.press("u")  # takes back that answer, not the vote before
    assert page.get_attribute(
        ".criterion[data-criterion=overall] button[data-answer=right]", "aria-pressed") == "false"
    assert page.get_attribute("#rate-app", "data-lease") == second
    assert live_judgments(world.campaign).filter(lease_id=first).count() == 2  # one a question

    page.keyboard.press("1")
    page.keyboard.press("3")
    shown_lease(page, other_than=second)
    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.filter(lease_id=second).exists())
    assert dict(live_judgments(world.campaign).filter(lease_id=second).values_list(
        "criterion", "outcome")) == {"overall": expected_outcome(second, "left"),
                                     "alignment": expected_outcome(second, "tie")}
