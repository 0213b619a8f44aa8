"""The rating page sends its hot requests with its rating token, and renews the token through
its session when it has expired, without the annotator noticing or a vote being lost."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from django.contrib.sessions.models import Session
from django.core import signing

from evalhub.campaigns.rating_tokens import RATING_TOKEN_SECONDS, rating_token_issue
from tests.browser.conftest import PASSWORD, login
from tests.browser.pages import outbox, shown_lease, until, wait_outbox_empty
from tests.browser.world import build_world, expected_outcome, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKEN_IN_CONFIG = re.compile(r'"rating_token": "([^"]+)"')
HOT = re.compile(r"/api/v1/rate/\d+/(next|votes)/$")


def _expired_token(monkeypatch, *, user_id: int, campaign_id: int) -> str:
    with monkeypatch.context() as patch:
        past = time.time() - RATING_TOKEN_SECONDS - 60
        patch.setattr(signing, "time", SimpleNamespace(time=lambda: past))
        return rating_token_issue(user_id=user_id, campaign_id=campaign_id)


def _serve_with_expired_token(page, monkeypatch, world) -> str:
    """From now on the page comes with a token past its lifetime, as if open for an hour."""
    rate_url = f"/rate/{world.campaign.pk}/"
    expired = _expired_token(monkeypatch, user_id=world.annotator.pk,
                             campaign_id=world.campaign.pk)

    def page_with_expired_token(route):
        response = route.fetch()
        html = TOKEN_IN_CONFIG.sub(f'"rating_token": "{expired}"', response.text(), count=1)
        assert expired in html
        route.fulfill(response=response, body=html)

    # (Routes do not see the login's redirect: the tests reload the page after this.)
    page.route(lambda url: urlsplit(url).path == rate_url, page_with_expired_token)
    return expired


def test_an_expired_token_is_renewed_through_the_session_and_no_vote_is_lost(context,
                                                                             monkeypatch):
    world = build_world(prompts=4)
    rate_url = f"/rate/{world.campaign.pk}/"
    page = context.new_page()
    login(page, world.annotator.username, rate_url)
    shown_lease(page)
    expired = _serve_with_expired_token(page, monkeypatch, world)
    hot, renewals = [], []
    page.on("response", lambda response: (
        hot.append((response.request.headers.get("authorization", ""),
                    "x-csrftoken" in response.request.headers, response.status))
        if HOT.search(response.url) else
        renewals.append(response.status) if response.url.endswith("/rating-token/") else None))
    page.reload()

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
    assert renewals == [201]  # renewed once, then the fresh token served every request
    with_expired = [entry for entry in hot if entry[0] == f"Rating {expired}"]
    with_fresh = [entry for entry in hot if entry not in with_expired]
    assert hot[0] in with_expired and all(status == 401 for _, _, status in with_expired)
    # Both votes (and any lease asked apart) went out with the fresh token, never falling back
    # to session + CSRF.
    assert len(with_fresh) >= 2 and all(
        auth.startswith("Rating ") and not csrf and status in (200, 201)
        for auth, csrf, status in with_fresh)


def test_signed_out_with_an_expired_token_the_vote_waits_until_the_annotator_signs_in(
        context, monkeypatch):
    world = build_world(prompts=4)
    rate_url = f"/rate/{world.campaign.pk}/"
    page = context.new_page()
    login(page, world.annotator.username, rate_url)
    shown_lease(page)
    _serve_with_expired_token(page, monkeypatch, world)
    page.reload()
    lease = shown_lease(page)
    Session.objects.all().delete()  # the session ended elsewhere (signed out, expired)

    page.keyboard.press("1")
    page.wait_for_selector("#rate-pending:not([hidden])")
    # The token renewal and the session request were refused: the page says what to do.
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
