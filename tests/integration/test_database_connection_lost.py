"""A vote whose database connection is terminated mid-request is stored once, on retry.

The web server (pytest-django's live server: real HTTP, its own PostgreSQL connection per
request thread) receives a vote while another session holds the lease's row lock, so the vote
waits inside its transaction; the test then terminates that backend with
``pg_terminate_backend``, as a database restart or failover would. The answer is a 503 (the
transaction rolled back, nothing stored), and the page's outbox sends the same vote again
(same ``client_id``): 201, and a second resend 200 with the same body. Counted in rows: one
judgment per criterion, and the lease completed once.
"""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
import requests
from django.conf import settings
from rest_framework.authtoken.models import Token

from evalhub.campaigns.models import Judgment, Lease, LeaseStatus
from tests.builders import build_campaign

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _dsn() -> str:
    db = settings.DATABASES["default"]
    password = f" password={db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (f"host={db.get('HOST') or '127.0.0.1'} port={db.get('PORT') or 5432} "
            f"user={db['USER']} dbname={db['NAME']}{password}")


def _waiting_backend(admin: psycopg.Connection, exclude: int, timeout: float = 20) -> int:
    """The pid of the backend waiting for a lock (the vote's), other than ``exclude``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid NOT IN (pg_backend_pid(), %s)",
            (exclude,)).fetchone()
        if row:
            return row[0]
        time.sleep(0.05)
    raise AssertionError("the vote never waited for the lease's lock")


def test_a_vote_cut_off_from_the_database_is_stored_once_when_the_outbox_resends_it(
        live_server):
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip("pg_terminate_backend needs PostgreSQL")
    world = build_campaign(prompts=2, annotators=1)
    token = Token.objects.create(user=world.annotator).key
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    base = f"{live_server.url}/api/v1/rate/{world.campaign.pk}"
    leased = session.post(f"{base}/next/", json={}, timeout=30)
    assert leased.status_code == 201, leased.text
    lease_id = leased.json()["lease"]
    vote = {"client_id": str(uuid.uuid4()), "lease": lease_id,
            "answers": {criterion: "left" for criterion in world.campaign.criteria}}

    answers: list[requests.Response] = []
    with psycopg.connect(_dsn(), autocommit=True) as admin, psycopg.connect(_dsn()) as locker:
        # Hold the lease's row lock: the vote waits for it inside its own transaction.
        locker.execute("SELECT 1 FROM campaigns_lease WHERE id = %s FOR UPDATE", (lease_id,))
        sender = threading.Thread(target=lambda: answers.append(
            session.post(f"{base}/votes/", json=vote, timeout=60)))
        sender.start()
        victim = _waiting_backend(admin, exclude=locker.info.backend_pid)
        assert admin.execute("SELECT pg_terminate_backend(%s)", (victim,)).fetchone()[0]
        locker.rollback()
        sender.join(60)

    cut_off = answers[0]
    assert cut_off.status_code == 503, cut_off.text
    assert "send the request again" in cut_off.json()["detail"].lower()
    assert not Judgment.objects.filter(lease_id=lease_id).exists()  # rolled back

    resent = session.post(f"{base}/votes/", json=vote, timeout=30)  # the outbox's retry
    assert resent.status_code == 201, resent.text
    again = session.post(f"{base}/votes/", json=vote, timeout=30)  # and a duplicate resend
    assert again.status_code == 200 and again.json()["client_id"] == vote["client_id"]

    stored = Judgment.objects.filter(lease_id=lease_id)
    assert stored.count() == len(world.campaign.criteria)
    assert set(stored.values_list("client_id", flat=True)) == {uuid.UUID(vote["client_id"])}
    assert Judgment.objects.filter(annotator=world.annotator).count() == len(
        world.campaign.criteria)
    assert Lease.objects.get(pk=lease_id).status == LeaseStatus.COMPLETED
