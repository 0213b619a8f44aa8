"""A vote whose database connection dies mid-request is resent by the page's outbox and stored
once: the server answers 503 (nothing stored), the outbox keeps the vote and sends it again."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings

from evalhub.campaigns.models import Judgment, Lease, LeaseStatus
from tests.browser.conftest import login
from tests.browser.pages import outbox, shown_lease, until, wait_outbox_empty
from tests.browser.world import build_world, expected_outcome
from tests.integration.test_database_connection_lost import _dsn, _waiting_backend

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_vote_whose_database_connection_is_terminated_is_resent_and_stored_once(context):
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip("pg_terminate_backend needs PostgreSQL")
    world = build_world(prompts=4)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    first = shown_lease(page)
    page.wait_for_function("() => document.querySelectorAll('#rate-app').length === 1")

    with psycopg.connect(_dsn(), autocommit=True) as admin, psycopg.connect(_dsn()) as locker:
        # The lease's row lock held elsewhere: the vote waits inside its transaction, and then
        # its connection is terminated, as a database restart or failover would do.
        locker.execute("SELECT 1 FROM campaigns_lease WHERE id = %s FOR UPDATE", (first,))
        page.keyboard.press("1")
        victim = _waiting_backend(admin, exclude=locker.info.backend_pid)
        assert admin.execute("SELECT pg_terminate_backend(%s)", (victim,)).fetchone()[0]
        page.wait_for_selector("#rate-pending:not([hidden])")
        assert [item["lease"] for item in outbox(page)] == [first]
        assert not Judgment.objects.filter(lease_id=first).exists()
        locker.rollback()

    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.filter(lease_id=first).count() == 1)
    page.wait_for_timeout(500)  # a duplicate send would have landed by now
    judgment = Judgment.objects.get(lease_id=first)
    assert judgment.outcome == expected_outcome(first, "left")
    assert Judgment.objects.filter(annotator=world.annotator).count() == 1
    assert Lease.objects.get(pk=first).status == LeaseStatus.COMPLETED
