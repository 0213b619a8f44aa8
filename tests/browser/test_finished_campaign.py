"""An annotator who has rated every pair open to them sees a finished page (no "remaining",
no "Waiting for the next pair"), although the campaign still needs other annotators' votes;
the home page then says Done for that campaign instead of offering "Start rating".

Fails on any console error or Content-Security-Policy violation of the pages.
"""

from __future__ import annotations

import pytest

from evalhub.campaigns.models import CampaignStatus, ComparisonTask
from tests.browser.conftest import login
from tests.browser.pages import shown_lease, until, wait_outbox_empty
from tests.browser.world import build_world, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FINISHED = "() => document.querySelector('#rate-app').dataset.done === '1'"


def test_a_finished_annotator_sees_done_here_and_on_the_home_page(context, errors):
    world = build_world(prompts=2, sizes=((320, 320), (320, 320)))
    # Each pair wants three votes: after this annotator's, the campaign still needs 4.
    ComparisonTask.objects.filter(campaign=world.campaign).update(judgments_needed=3)
    page = context.new_page()
    login(page, world.annotator.username, "/")
    assert page.locator(f"a[href='/rate/{world.campaign.pk}/']").inner_text() == "Start rating"

    page.goto(f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    page.keyboard.press("1")
    shown_lease(page, other_than=lease)
    page.keyboard.press("2")
    page.wait_for_function(FINISHED)
    wait_outbox_empty(page)
    assert until(lambda: live_judgments(world.campaign).count() == 2)

    assert page.is_visible("#rate-done") and not page.is_visible("#rate-stage")
    assert "You have rated everything in this campaign" in page.inner_text("#rate-done")
    page.wait_for_function(
        "() => document.querySelector('#rate-count').textContent.includes('2 votes')")
    text = page.inner_text("#rate-app")
    assert "remaining" not in text and "Waiting" not in text, text
    assert not page.locator(".answer-btn").first.is_visible()  # nothing left to answer
    assert not page.is_visible("#skip-btn")  # nor to skip
    # The last vote can still come back.
    assert page.is_visible("#undo-btn") and page.is_enabled("#undo-btn")

    # A reload finds nothing either: the same finished page at once.
    page.reload()
    page.wait_for_function(FINISHED)
    assert "remaining" not in page.inner_text("#rate-app")

    # The home page says Done, with no way in; closing the campaign keeps it Done.
    page.goto("/")
    card = page.locator(".card", has_text="Shapes study")
    assert card.locator(".campaign-done").inner_text().startswith("Done")
    assert page.locator(f"a[href='/rate/{world.campaign.pk}/']").count() == 0
    world.campaign.status = CampaignStatus.CLOSED
    world.campaign.save(update_fields=["status"])
    page.reload()
    assert "this campaign is closed" in card.inner_text()
    assert page.locator(f"a[href='/rate/{world.campaign.pk}/']").count() == 0
    assert errors == [] and page.evaluate("window.__violations") == []
