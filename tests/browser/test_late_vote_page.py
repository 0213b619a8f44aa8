"""A vote held in the outbox while its lease expired, sent after a reload that leased the same
task to the same annotator again: it counts (it is their own answer to that task), the newer
lease is closed by it, and the page moves on instead of asking for the pair a second time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from evalhub.campaigns.models import Judgment, Lease, LeaseStatus
from tests.browser.conftest import login
from tests.browser.pages import outbox, script_errors, shown_lease, wait_outbox_empty
from tests.browser.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_late_vote_from_the_outbox_closes_the_same_task_leased_again_and_moves_on(
        context, errors):
    world = build_world(prompts=1)
    page = context.new_page()
    offline = {"on": True}

    def votes(route):
        if offline["on"] and route.request.method == "POST":
            route.abort()
        else:
            route.continue_()

    page.route("**/votes/", votes)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    first = shown_lease(page)
    page.keyboard.press("1")
    page.wait_for_function("() => Object.keys(localStorage).some(k => k.endsWith('.outbox')"
                           " && JSON.parse(localStorage.getItem(k)).length === 1)")
    Lease.objects.filter(pk=first).update(expires_at=timezone.now() - timedelta(seconds=1))
    page.reload()
    again = shown_lease(page)
    assert again != first
    assert Lease.objects.get(pk=again).task_id == Lease.objects.get(pk=first).task_id
    assert [item["lease"] for item in outbox(page)] == [first]

    answers = []
    page.on("response", lambda r: answers.append((r.status, r.json())) if (
        r.url.endswith("/votes/") and r.request.method == "POST") else None)
    offline["on"] = False
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    wait_outbox_empty(page, timeout_s=40)
    page.wait_for_function("() => !document.querySelector('#rate-done').hidden", timeout=20000)

    assert [(status, body.get("closed")) for status, body in answers] == [(201, [again])]
    assert Lease.objects.get(pk=again).status == LeaseStatus.COMPLETED
    assert [str(pk) for pk in Judgment.objects.values_list("lease_id", flat=True)] == [first]
    assert script_errors(errors) == []
