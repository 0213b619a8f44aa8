"""A 404 does not reveal that a campaign exists (docs/security.md): a signed-in outsider gets
the same answer, status and body, for another project's campaign as for an id never used.

The export endpoints and the export page read the campaign pages' access rule; every other
campaign endpoint of the API is held to the same answer here too.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.builders import build_campaign
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

MISSING = 999_999_999

# (method, path under the campaign's id, query or body)
CAMPAIGN_ENDPOINTS = [
    ("get", "/api/v1/campaigns/{id}/export/", {"format": "raw-csv"}),
    ("get", "/api/v1/campaigns/{id}/export/", {"format": "dpo-jsonl", "bundle": "zip"}),
    ("get", "/api/v1/campaigns/{id}/export/", {}),  # a bad query is not answered first
    ("get", "/api/v1/campaigns/{id}/export/rankings/", {"format": "raw"}),
    ("get", "/api/v1/campaigns/{id}/export/rankings/", {"format": "nope"}),
    ("get", "/api/v1/campaigns/{id}/leaderboard/", {}),
    ("post", "/api/v1/campaigns/{id}/metric-judges/", {}),
    ("get", "/api/v1/campaigns/{id}/", {}),
    ("get", "/api/v1/campaigns/{id}/quality/", {}),
    ("get", "/api/v1/campaigns/{id}/reports/", {}),
    ("post", "/api/v1/campaigns/{id}/close/", {}),
    ("get", "/api/v1/rate/{id}/", {}),
    ("post", "/api/v1/rate/{id}/next/", {}),
]


@pytest.fixture
def foreign():
    """A campaign of another project, and a signed-in owner of a project of their own."""
    world = build_campaign(runs=2, prompts=1)
    outsider = MembershipFactory(role="owner").user
    client = Client()
    client.force_login(outsider)
    return world.campaign, client


@pytest.mark.parametrize(("method", "path", "params"), CAMPAIGN_ENDPOINTS)
def test_another_projects_campaign_and_a_missing_id_answer_alike(foreign, method, path,
                                                                  params):
    campaign, client = foreign
    send = getattr(client, method)
    existing = send(path.format(id=campaign.pk), params)
    missing = send(path.format(id=MISSING), params)
    assert existing.status_code == missing.status_code == 404
    assert existing.json() == missing.json()
    assert existing["Content-Type"] == missing["Content-Type"]


def test_the_export_page_answers_alike_too(foreign):
    campaign, client = foreign
    for params in ({}, {"download": "1", "format": "raw-csv"}):
        existing = client.get(f"/campaigns/{campaign.pk}/export/", params)
        missing = client.get(f"/campaigns/{MISSING}/export/", params)
        assert existing.status_code == missing.status_code == 404
        assert _without_csrf_token(existing) == _without_csrf_token(missing)


def _without_csrf_token(response) -> str:
    """The page, but for the per-response mask of its sign-out form's token."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def test_members_who_may_not_export_are_still_told_why(db):
    world = build_campaign(runs=2, prompts=1)
    client = Client()
    client.force_login(world.annotator)
    for path in ("export/?format=raw-csv", "export/rankings/"):
        refused = client.get(f"/api/v1/campaigns/{world.campaign.pk}/{path}")
        assert refused.status_code == 403
        assert "owners and scientists" in refused.json()["detail"]
