import pytest

from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


def test_an_annotator_finds_open_campaigns_on_the_home_page(client):
    world = build_campaign(prompts=1, run_names=["secret-run-a", "secret-run-b"])
    client.force_login(world.annotators[0])
    page = client.get("/").content.decode()
    assert f"/rate/{world.campaign.pk}/" in page
    assert "secret-run" not in page
    assert "Dashboards</a> ·" not in page  # analysis links are for scientists


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_healthz_reports_the_database(client):
    assert client.get("/healthz").json()["status"] == "ok"
