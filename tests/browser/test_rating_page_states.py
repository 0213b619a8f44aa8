"""The rating page's states beyond rating:

- every pair left for the annotator is leased to someone else (a closed tab): the page says
  nothing is free right now (not "you have rated everything"), the home page still offers the
  campaign, and the page takes the pair by itself once that lease ends;
- a rank-all ranking in progress: the Undo button takes back a pick, as U does;
- the first-visit instructions sheet does not open over a finished or closed page;
- a closed or failed campaign says it is over (no reload offered: it never opens again);
- a pair answered in another tab first: the second tab's vote is said not counted;
- best of K on video: the pick is announced as a video.

Fails on any console error or Content-Security-Policy violation of the pages.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from evalhub.campaigns.models import CampaignStatus, Lease, LeaseStatus, TaskKind
from evalhub.campaigns.serving.rating import rate_next
from evalhub.projects.models import Role
from tests.browser.conftest import login
from tests.browser.pages import shown_lease, until, wait_outbox_empty
from tests.browser.world import (
    SECRET_NAMES,
    build_world,
    expected_outcome,
    live_judgments,
    picture,
)
from tests.builders import build_campaign, cast_vote
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAITING = "() => document.querySelector('#rate-app').dataset.waiting === '1'"
FINISHED = "() => document.querySelector('#rate-app').dataset.done === '1'"
SHEET_OPEN = "() => document.querySelector('#rate-instructions').open"


def test_pairs_held_by_someone_else_are_waited_for_not_finished(context, errors):
    world = build_world(prompts=1, sizes=((320, 320), (320, 320)))
    other = MembershipFactory(project=world.campaign.project, role=Role.ANNOTATOR).user
    held = rate_next(annotator=other, campaign_id=world.campaign.pk)  # then the tab closed
    assert "lease" in held

    page = context.new_page()
    login(page, world.annotator.username, "/")
    # The home page offers the campaign: its pair may come back.
    assert page.locator(f"a[href='/rate/{world.campaign.pk}/']").inner_text() == "Start rating"
    page.goto(f"/rate/{world.campaign.pk}/")
    page.wait_for_function(WAITING)
    assert page.is_visible("#rate-done") and not page.is_visible("#rate-stage")
    text = page.inner_text("#rate-done")
    assert "No pair free to rate right now" in text and "someone else" in text
    assert "You have rated everything" not in page.inner_text("#rate-app")
    assert not page.evaluate(FINISHED)
    # Nothing to answer or skip while waiting (no last pair's answer left highlighted).
    assert not page.locator(".answer-btn").first.is_visible()
    assert not page.is_visible("#skip-btn") and not page.is_visible(".zoom-info")

    # The other annotator's lease runs out: the page finds the pair by itself (no reload).
    Lease.objects.filter(pk=held["lease"]).update(expires_at=timezone.now() - timedelta(1))
    lease = shown_lease(page)
    assert not page.evaluate(WAITING) and not page.is_visible("#rate-done")
    assert Lease.objects.get(pk=lease).annotator == world.annotator
    page.keyboard.press("1")
    page.wait_for_function(FINISHED)
    wait_outbox_empty(page)
    assert until(lambda: live_judgments(world.campaign).count() == 1)
    assert "You have rated everything" in page.inner_text("#rate-done")
    assert errors == [] and page.evaluate("window.__violations") == []


def test_votes_that_cannot_be_sent_are_waited_for_not_called_finished(context, errors):
    # Two unsent votes hold their pairs (the server's cap of two leases): the page says it is
    # sending them, then shows the next pair once the network is back. Nothing lost.
    world = build_world(prompts=4, sizes=((320, 320), (320, 320)))
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    first = shown_lease(page)
    page.route("**/votes/", lambda route: route.abort())
    page.keyboard.press("1")
    second = shown_lease(page, other_than=first)
    page.keyboard.press("2")
    page.wait_for_function(WAITING)
    text = page.inner_text("#rate-done")
    assert "Sending your votes" in text and "2 votes are not sent yet" in text
    assert "rated everything" not in page.inner_text("#rate-app")
    page.unroute("**/votes/")
    third = shown_lease(page, other_than=second)
    assert third not in (first, second)
    wait_outbox_empty(page)
    assert until(lambda: live_judgments(world.campaign).count() == 2)
    assert [e for e in errors if "net::ERR_FAILED" not in e] == []


def _best_of_4(**kwargs):
    return build_campaign(
        runs=4, prompts=2, annotators=1, run_names=["run-a", "run-b", "run-c", "run-d"],
        model_name=SECRET_NAMES[0], checkpoint_names=[f"{SECRET_NAMES[1]}{i}" for i in range(4)],
        image_bytes=lambda p, r: picture(p * 4 + r, (320, 320)), name="Best of four",
        task_kind=TaskKind.BEST_OF_K, k=4, judgments_per_pair=1, **kwargs)


def test_the_undo_button_takes_back_a_pick_of_a_ranking_in_progress(context, errors):
    world = _best_of_4(rank_all=True)
    page = context.new_page()
    login(page, world.annotators[0].username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    assert page.is_disabled("#undo-btn")  # nothing picked, no vote yet

    page.click(".grid-pick[data-slot='1']")
    page.click(".grid-pick[data-slot='3']")
    assert page.locator(".grid-pane.picked").count() == 2
    page.wait_for_function("() => !document.querySelector('#undo-btn').disabled")
    page.click("#undo-btn")  # the mouse takes back the pick of 4, not a vote
    page.wait_for_function("() => document.querySelectorAll('.grid-pane.picked').length === 1")
    assert page.is_enabled("#undo-btn")
    page.click("#undo-btn")
    page.wait_for_function("() => document.querySelectorAll('.grid-pane.picked').length === 0")
    page.wait_for_function("() => document.querySelector('#undo-btn').disabled")
    assert page.get_attribute("#rate-app", "data-lease") == lease

    # The ranking completed by mouse is stored as picked.
    for slot in (2, 0, 1):
        page.click(f".grid-pick[data-slot='{slot}']")
    shown_lease(page, other_than=lease)
    wait_outbox_empty(page)
    judgment = until(lambda: live_judgments(world.campaign).first())
    order = Lease.objects.get(pk=lease).order
    assert judgment.ranking == [order[2], order[0], order[1], order[3]]
    assert page.is_enabled("#undo-btn")  # the vote can come back
    assert errors == [] and page.evaluate("window.__violations") == []


def test_no_instructions_sheet_over_a_finished_page(context, errors):
    world = build_world(prompts=1, sizes=((320, 320), (320, 320)),
                        instructions="Look at the shape first.")
    cast_vote(world.campaign, world.annotator)
    page = context.new_page()  # a fresh browser: the sheet was never read here
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    page.wait_for_function(FINISHED)
    page.wait_for_timeout(300)
    assert not page.evaluate(SHEET_OPEN)
    assert not page.evaluate(  # not marked read: it opens on a visit with pairs to rate
        "() => Object.keys(localStorage).some((k) => k.endsWith('.instructions'))")
    # The "?" button still opens it on demand.
    page.click("#rate-instructions-btn")
    page.wait_for_function(SHEET_OPEN)
    assert errors == [] and page.evaluate("window.__violations") == []


def test_no_instructions_sheet_over_a_campaign_not_open(context, errors):
    world = build_world(prompts=2, sizes=((320, 320), (320, 320)),
                        instructions="Look at the shape first.")
    world.campaign.status = CampaignStatus.PAUSED
    world.campaign.save(update_fields=["status"])
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    page.wait_for_function(FINISHED)
    assert "not open for rating" in page.inner_text("#rate-done")
    page.wait_for_timeout(300)
    assert not page.evaluate(SHEET_OPEN)

    # Open again: the next visit shows the sheet (it was never read).
    world.campaign.status = CampaignStatus.ACTIVE
    world.campaign.save(update_fields=["status"])
    page.reload()
    shown_lease(page)
    assert page.evaluate(SHEET_OPEN)
    assert not Lease.objects.filter(status=LeaseStatus.ACTIVE).exclude(
        annotator=world.annotator).exists()
    assert errors == [] and page.evaluate("window.__violations") == []


@pytest.mark.parametrize(("status", "says"), [
    (CampaignStatus.CLOSED, "Campaign 'Shapes study' is over: it was closed and takes no more "
                            "votes."),
    (CampaignStatus.FAILED, "Campaign 'Shapes study' is over: it failed and takes no votes."),
])
def test_a_closed_or_failed_campaign_says_it_is_over_and_offers_no_reload(
        context, errors, status, says):
    """Neither state opens again: never "is failed", never "reload once it is open"."""
    world = build_world(prompts=2, sizes=((320, 320), (320, 320)))
    world.campaign.status = status
    world.campaign.save(update_fields=["status"])
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    page.wait_for_function(FINISHED)
    page.wait_for_function("() => / · campaign over$/.test("  # the campaign's status is read
                           "document.querySelector('#rate-count').textContent)")
    assert page.text_content("#rate-done-title") == "This campaign is over"
    assert page.text_content("#rate-done-message") == says
    assert errors == [] and page.evaluate("window.__violations") == []


def test_a_pair_answered_in_another_tab_first_is_said_not_counted(context, errors):
    """The annotator rates in two tabs, both showing the pair on screen before (the tab opened
    second resumes it). The first tab's vote is stored; the second's, a different vote on the
    same lease, is refused (409): that tab says it was not counted (never "Voted right") and
    goes on with the next pair."""
    world = build_world(prompts=4, sizes=((320, 320), (320, 320)))
    rate_url = f"/rate/{world.campaign.pk}/"
    first = context.new_page()
    login(first, world.annotator.username, rate_url)
    lease = shown_lease(first)
    second = context.new_page()
    second.goto(rate_url)
    assert shown_lease(second) == lease

    first.keyboard.press("1")
    shown_lease(first, other_than=lease)
    wait_outbox_empty(first)
    second.keyboard.press("2")
    shown_lease(second, other_than=lease)  # on to the next pair
    second.wait_for_function("() => document.querySelector('#rate-status').textContent"
                             " === 'Not counted: this pair was already answered in another tab'")
    wait_outbox_empty(second)
    stored = live_judgments(world.campaign).get(lease_id=lease)
    assert stored.outcome == expected_outcome(lease, "left")  # the first tab's answer stands
    # The browser logs the refused request itself; nothing else went wrong.
    assert [e for e in errors if not e.endswith("status of 409 (Conflict)")] == []
    assert first.evaluate("window.__violations") == []


def test_a_best_of_k_pick_is_announced_in_the_campaigns_medium(context, errors):
    world = _best_of_4()
    page = context.new_page()
    login(page, world.annotators[0].username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    # The page's own module (as the page loaded it) names a pick as the server names the pane
    # (data-name, campaigns.selectors.rating_panes), for each medium.
    said = page.evaluate("""async () => {
      const href = document.querySelector('link[rel=modulepreload][href*="rate/picks"]').href;
      const { Picks } = await import(href);
      const fields = { answers: {}, rankings: { overall: [2] } };
      return ['video', 'image'].map((medium) => {
        const app = document.createElement('div');
        for (let slot = 0; slot < 4; slot++) {
          const pane = app.appendChild(document.createElement('figure'));
          pane.className = 'grid-pane';
          pane.dataset.slot = String(slot);
          pane.dataset.name = `${medium} ${slot + 1}`;
          pane.appendChild(document.createElement('button')).className = 'grid-pick';
        }
        return new Picks(app, { k: 4, rankAll: false, criterion: 'overall' }).describe(fields);
      });
    }""")
    assert said == ["Picked video 3", "Picked image 3"]
    # On this image campaign's page, the pick announced.
    page.keyboard.press("3")
    page.wait_for_function(
        "() => document.querySelector('#rate-status').textContent === 'Picked image 3'")
    assert errors == [] and page.evaluate("window.__violations") == []
