"""Refusals are pages in the site's layout, logged as one line without a traceback; the layout
offers only links its reader may follow, and a favicon."""

import logging
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def test_a_403_is_a_styled_page_logged_without_a_traceback(client, project, annotator, caplog):
    campaign = CampaignFactory(project=project)
    client.force_login(annotator)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get(reverse("dashboard-campaign", args=[campaign.id]))
    assert response.status_code == 403
    assert [t.name for t in response.templates][:2] == ["403.html", "base.html"]
    page = response.content.decode()
    assert "You cannot open this page" in page
    assert "(annotator) cannot see leaderboards" in page  # the reason, from PermissionDenied
    assert 'class="topbar"' in page
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING and records[0].exc_info is None
    assert "Forbidden (Permission denied)" in records[0].getMessage()
    assert "Traceback" not in caplog.text


def test_a_404_is_a_styled_page_that_offers_sign_in_to_anonymous_visitors(client, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert [t.name for t in response.templates][:2] == ["404.html", "base.html"]
    page = response.content.decode()
    assert "Nothing here" in page and "/accounts/login/?next=/no/such/page/" in page
    assert "Traceback" not in caplog.text


def _navigation(client) -> str:
    page = client.get("/").content.decode()
    return page[page.index("<nav>"):page.index("</nav>")]


def test_annotators_are_not_offered_the_dashboards_their_role_cannot_open(client, annotator,
                                                                           scientist):
    client.force_login(annotator)
    assert "/dashboard/" not in _navigation(client)
    client.force_login(scientist)
    assert '<a href="/dashboard/">Dashboards</a>' in _navigation(client)


def test_every_page_links_the_favicon_served_from_static_files(client):
    page = client.get(reverse("login")).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    svg = Path(finders.find("favicon.svg")).read_text()
    assert svg.startswith("<svg") and "<script" not in svg and "style" not in svg
