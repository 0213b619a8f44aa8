"""The rating page's count of what is left: the campaign's judgments still needed from all
annotators (not what this annotator can still give: one vote per pair), said as such ("left in
the campaign"; the tooltip says approximate, and in the page's own word for a task), and one
lower after each of the annotator's votes even when the server's count was cached before the
vote (another server process's cache, for a few seconds)."""

from __future__ import annotations

import re

import pytest

from evalhub.campaigns.models import TaskKind
from tests.browser.conftest import login
from tests.browser.pages import shown_lease, wait_outbox_empty
from tests.browser.world import build_world, picture
from tests.builders import build_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COUNT = re.compile(r"^(\d+) votes? by you · (\d+) left in the campaign$")


def _count(page) -> tuple[int, int]:
    """(my votes, the campaign's judgments still needed) as the page shows them."""
    match = COUNT.match(page.text_content("#rate-count").strip())
    assert match, page.text_content("#rate-count")
    return int(match[1]), int(match[2])


def test_the_count_is_the_campaigns_and_goes_down_after_a_vote_answered_with_a_stale_one(
        context):
    world = build_world(prompts=6)  # one judgment per pair: 6 needed
    page = context.new_page()

    def stale(route):
        # As a server process whose count was cached before this vote answers it.
        response = route.fetch()
        body = response.json()
        body["progress"]["remaining"] += 1
        route.fulfill(response=response, json=body)

    page.route("**/votes/", stale)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    page.wait_for_function("() => /left in the campaign/.test("
                           "document.querySelector('#rate-count').textContent)")
    assert _count(page) == (0, 6)
    title = page.get_attribute("#rate-count", "title")
    assert "whole campaign" in title and "not how many you can still give" in title
    assert "About" in title and "rates a pair once" in title
    for votes in (1, 2):
        page.keyboard.press("1")
        lease = shown_lease(page, other_than=lease)
        wait_outbox_empty(page)
        page.wait_for_function(
            f"() => document.querySelector('#rate-count').textContent.startsWith('{votes} vote')")
        assert _count(page) == (votes, 6 - votes)  # not 6 - votes + 1, the stale answer


def test_a_best_of_k_page_says_task_not_pair_in_the_counts_tooltip(context):
    world = build_campaign(
        runs=4, prompts=2, annotators=1, image_bytes=lambda p, r: picture(p * 4 + r, (256, 256)),
        name="Best of four", task_kind=TaskKind.BEST_OF_K, k=4, judgments_per_pair=1)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    page.wait_for_function("() => /left in the campaign/.test("
                           "document.querySelector('#rate-count').textContent)")
    assert _count(page) == (0, 2)
    title = page.get_attribute("#rate-count", "title")
    assert "rates a task once" in title and "pair" not in title
