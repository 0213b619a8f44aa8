"""The rating page authenticates with its session like every page (CSRF checked); when the
session has ended, votes wait in the outbox and land once after the annotator signs in again."""

from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session

from tests.browser.conftest import PASSWORD, login
from tests.browser.pages import outbox, shown_lease, until, wait_outbox_empty
from tests.browser.world import build_world, expected_outcome, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOT = re.compile(r"/api/v1/rate/\d+/(next|votes)/$")


def test_votes_go_out_with_the_session_and_its_csrf_token_one_request_each(context):
    world = build_world(prompts=4)
    rate_url = f"/rate/{world.campaign.pk}/"
    page = context.new_page()
    hot = []
    page.on("response", lambda response: hot.append(
        (response.request.headers.get("authorization"),
         bool(response.request.headers.get("x-csrftoken")), response.status))
        if HOT.search(response.url) else None)
    login(page, world.annotator.username, rate_url)
    first = shown_lease(page)
    page.keyboard.press("1")
    second = shown_lease(page, other_than=first)
    page.keyboard.press("2")
    shown_lease(page, other_than=second)
    wait_outbox_empty(page)

    assert until(lambda: live_judgments(world.campaign).count() == 2)
    outcomes = {str(j.lease_id): j.outcome for j in live_judgments(world.campaign)}
    assert outcomes == {first: expected_outcome(first, "left"),
                        second: expected_outcome(second, "right")}
    assert hot and all(auth is None and csrf and status in (200, 201)
                       for auth, csrf, status in hot)


def test_signed_out_the_vote_waits_until_the_annotator_signs_in_and_then_lands_once(context):
    world = build_world(prompts=4)
    rate_url = f"/rate/{world.campaign.pk}/"
    page = context.new_page()
    login(page, world.annotator.username, rate_url)
    lease = shown_lease(page)
    Session.objects.all().delete()  # the session ended elsewhere (signed out, expired)

    page.keyboard.press("1")
    page.wait_for_selector("#rate-pending:not([hidden])")
    # The session request was refused: the page says what to do.
    page.wait_for_selector("#rate-signed-out:not([hidden])")
    assert [item["lease"] for item in outbox(page)] == [lease]
    assert not live_judgments(world.campaign).exists()

    # The notice's link signs in again in a new tab, and comes back to this campaign.
    with page.expect_popup() as opened:
        page.click("#rate-signed-out a")
    tab = opened.value
    tab.fill("input[name=username]", world.annotator.username)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"**{rate_url}")
    wait_outbox_empty(page, timeout_s=20)  # the outbox retries on its own
    page.wait_for_selector("#rate-signed-out", state="hidden")
    assert until(lambda: live_judgments(world.campaign).count() == 1)
    page.wait_for_timeout(500)  # a duplicate send would have landed by now
    judgment = live_judgments(world.campaign).get()
    assert (str(judgment.lease_id), judgment.annotator) == (lease, world.annotator)
    assert judgment.outcome == expected_outcome(lease, "left")
