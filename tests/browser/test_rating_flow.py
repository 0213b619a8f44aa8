"""An annotator rates with mouse and keyboard, undoes, skips and reloads; the database holds
exactly the votes cast, mapped through the sides they were shown on, and nothing the page
saw names a run, checkpoint or model."""

from __future__ import annotations

import pytest

from evalhub.campaigns.models import Judgment, Lease, LeaseStatus
from tests.browser.conftest import login
from tests.browser.pages import images_loaded, outbox, shown_lease, until, wait_outbox_empty
from tests.browser.world import SECRET_NAMES, build_world, expected_outcome, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_rating_undo_skip_reload_and_blindness(context, traffic):
    world = build_world(prompts=8)
    page = context.new_page()
    rate_url = f"/rate/{world.campaign.pk}/"
    login(page, world.annotator.username, rate_url)
    cast: dict[str, str] = {}  # lease -> displayed answer

    # Mouse: the "Left" button.
    lease = shown_lease(page)
    assert images_loaded(page) == {"left": page.evaluate(
        "document.querySelector('.pane-left .pane-img').naturalWidth"), "right": page.evaluate(
        "document.querySelector('.pane-right .pane-img').naturalWidth")}
    assert all(width in (768, 1024) for width in images_loaded(page).values())
    page.click(".criterion button[data-answer=left]")
    cast[lease] = "left"

    # Keyboard: 2 (right), then the arrow key for left.
    lease = shown_lease(page, other_than=lease)
    page.keyboard.press("2")
    cast[lease] = "right"
    lease = shown_lease(page, other_than=lease)
    page.keyboard.press("ArrowLeft")
    cast[lease] = "left"
    undone = lease

    # Undo after the vote reached the server: it is retracted and the same pair returns.
    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.filter(lease_id=undone).exists())
    next_lease = shown_lease(page, other_than=undone)
    page.keyboard.press("u")
    again = shown_lease(page, other_than=next_lease)
    del cast[undone]
    old, new = Lease.objects.get(pk=undone), Lease.objects.get(pk=again)
    assert (new.task_id, new.a_side) == (old.task_id, old.a_side)
    assert until(lambda: Judgment.objects.get(lease_id=undone).retracted_at is not None)
    page.keyboard.press("t")
    cast[again] = "tie"

    # Skip with the button's key.
    skipped = shown_lease(page, other_than=again)
    page.keyboard.press("s")
    lease = shown_lease(page, other_than=skipped)
    assert until(lambda: Lease.objects.get(pk=skipped).status == LeaseStatus.SKIPPED)

    # A vote that cannot be sent yet stays in the outbox across a reload, then lands once.
    page.route("**/votes/", lambda route: route.abort())
    page.keyboard.press("4")
    cast[lease] = "both_bad"
    on_screen = shown_lease(page, other_than=lease)
    assert on_screen != skipped  # a skipped pair never comes back, even before the server knows
    page.wait_for_selector("#rate-pending:not([hidden])")
    assert [item["lease"] for item in outbox(page)] == [lease]
    page.unroute("**/votes/")
    page.reload()
    assert shown_lease(page) == on_screen  # the same pair comes back
    wait_outbox_empty(page)
    assert until(lambda: live_judgments(world.campaign).count() == len(cast))

    # Exactly the votes cast, each mapped through the side its image was shown on.
    judgments = {str(j.lease_id): j for j in live_judgments(world.campaign)}
    assert set(judgments) == set(cast)
    for lease_id, answer in cast.items():
        assert judgments[lease_id].outcome == expected_outcome(lease_id, answer), answer
        assert judgments[lease_id].latency_ms is not None
    assert Judgment.objects.filter(campaign=world.campaign).count() == len(cast) + 1  # + undone
    page.wait_for_function(
        "() => !document.querySelector('#rate-count').textContent.startsWith('0')")
    assert page.text_content("#rate-count").startswith(f"{len(cast)} votes")

    # Blind: no name in the HTML, the API answers or any URL the page requested.
    seen = [page.content(), *traffic.urls, *(body for _, body in traffic.bodies)]
    assert any("/api/v1/rate/" in url for url, _ in traffic.bodies)
    for name in SECRET_NAMES:
        leaks = [text[:200] for text in seen if name in text]
        assert not leaks, f"{name} leaked: {leaks}"
