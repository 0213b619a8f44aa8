"""API permissions and parameters, the management commands, and the dashboard pages."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from evalhub.campaigns.models import ComparisonTask, Judgment
from evalhub.leaderboards import tasks as lb_tasks
from evalhub.projects.models import Role
from evalhub.runs.models import Image
from tests.builders import build_campaign, logged_in
from tests.factories import MembershipFactory, UserFactory
from tests.leaderboards.helpers import set_image_metric, set_run_metric, simulate_votes

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = build_campaign(runs=3, prompts=4, annotators=3,
                           run_names=["alpha-run", "beta-run", "gamma-run"])
    strengths = {run.id: s for run, s in zip(world.runs, [1200, 1000, 800], strict=True)}
    simulate_votes(world, strengths)
    set_run_metric(world.runs[0], "fid", 12.5, calibrated=False)
    set_run_metric(world.runs[1], "fid", 15.0, calibrated=False)
    set_run_metric(world.runs[2], "clip_score", 28.0, calibrated=True)
    return world


def _url(world, suffix="leaderboard/"):
    return f"/api/v1/campaigns/{world.campaign.pk}/{suffix}"


def test_scientists_and_owners_read_the_leaderboard(api, world):
    owner = MembershipFactory(project=world.campaign.project, role=Role.OWNER).user
    for user in (world.scientist, owner):
        api.force_authenticate(user)
        response = api.get(_url(world))
        assert response.status_code == 200
        body = response.json()
        assert body["runs"][0]["name"] == "alpha-run"
        assert body["last_updated"] and body["stale"] is False
        assert body["runs"][0]["metrics"]["fid"]["calibrated"] is False


def _as_json_schema(node):
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema's ``null`` alternative."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _as_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


def test_the_leaderboard_is_what_the_openapi_schema_says(api, world):
    import jsonschema

    api.force_authenticate(world.scientist)
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/campaigns/{campaign_id}/leaderboard/"]["get"]
    documented = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert "runs" in documented["properties"]  # described, not a free-form object
    alpha, _, gamma = world.runs
    for params in ({}, {"ab": f"{gamma.id},{alpha.id}"}, {"ab": f"{gamma.id},999999"}):
        body = api.get(_url(world), params).json()
        jsonschema.validate(body, _as_json_schema(documented))
    broken = {**body, "runs": [{**body["runs"][0], "elo": "high"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _as_json_schema(documented))


def test_annotators_get_403_and_non_members_404(api, world):
    api.force_authenticate(world.annotators[0])
    assert api.get(_url(world)).status_code == 403
    assert api.post(_url(world, "metric-judges/"), {}, format="json").status_code == 403
    api.force_authenticate(UserFactory())
    assert api.get(_url(world)).status_code == 404
    assert api.post(_url(world, "metric-judges/"), {}, format="json").status_code == 404
    api.force_authenticate(None)
    assert api.get(_url(world)).status_code in (401, 403)
    api.force_authenticate(world.scientist)
    assert api.get("/api/v1/campaigns/999999/leaderboard/").status_code == 404


def test_filters_ab_and_bad_parameters(api, world):
    api.force_authenticate(world.scientist)
    alpha, _, gamma = world.runs
    body = api.get(_url(world), {"category": "colour", "ab": f"{gamma.id},{alpha.id}"}).json()
    assert body["filters"]["category"] == "colour"
    assert body["votes"] == Judgment.objects.filter(task__prompt__category="colour").count()
    assert body["ab_test"]["run_b_name"] == "alpha-run"
    assert body["ab_test"]["decision"] in ("b_better", "keep_rating")
    for bad in ({"criterion": "nope"}, {"judge": "x"}, {"ab": "1"}, {"since": "soon"}):
        response = api.get(_url(world), bad)
        assert response.status_code == 400, bad
        assert response.json()["detail"]


def test_metric_judges_endpoint_queues_the_task(api, world, sent_with_countdown,
                                                django_capture_on_commit_callbacks):
    api.force_authenticate(world.scientist)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(_url(world, "metric-judges/"), {"metric": "clip_score"},
                            format="json")
    assert response.status_code == 202
    assert sent_with_countdown == [("evalhub.leaderboards.metric_judges",
                           [world.campaign.pk, "clip_score", None], None)]
    assert api.post(_url(world, "metric-judges/"), {"metric": "fid"},
                    format="json").status_code == 400


def test_the_metric_judges_task_casts_and_refreshes(world):
    for k, image in enumerate(Image.objects.filter(run__in=world.runs)):
        set_image_metric(image, "clip_score", float(k % 7))
    report = lb_tasks.run_metric_judges(world.campaign.pk, "clip_score", None)
    tasks = ComparisonTask.objects.filter(campaign=world.campaign).count()
    assert world.campaign.criteria == ["overall"]
    assert report["created"] == tasks  # the one question the campaign asks
    assert world.campaign.leaderboard_snapshots.filter(criterion="overall").exists()


def test_leaderboard_command_prints_a_table_and_json(world):
    out = io.StringIO()
    call_command("leaderboard", str(world.campaign.pk), stdout=out)
    text = out.getvalue()
    lines = text.splitlines()
    assert "alpha-run" in lines[2] and "gamma-run" in lines[4]
    assert "12.5*" in text and "* uncalibrated" in text
    assert "Elo" in lines[1] and "95% CI" in lines[1]
    out = io.StringIO()
    call_command("leaderboard", str(world.campaign.pk), "--criterion", "overall", "--json",
                 "--ab", f"{world.runs[2].id},{world.runs[0].id}", stdout=out)
    payload = json.loads(out.getvalue())
    assert payload["runs"][0]["name"] == "alpha-run" and "ab_test" in payload
    with pytest.raises(CommandError):
        call_command("leaderboard", "424242")
    with pytest.raises(CommandError):
        call_command("leaderboard", str(world.campaign.pk), "--criterion", "nope")


def test_leaderboard_command_names_its_options_in_refusals(world):
    """The filters' refusals are the API's, worded with its parameter names (``ab=3,7``); the
    command says its own options instead."""
    campaign = str(world.campaign.pk)
    cases = [
        (["--ab", "10"], "--ab must be two different run ids separated by a comma, e.g. "
                         "--ab 3,7."),
        (["--pool", "x"], "--pool must be campaign ids separated by commas, e.g. --pool 4,9."),
        (["--since", "yesterday"], "--since must be an ISO date or datetime, got 'yesterday'."),
        (["--since", "2026-02-01", "--until", "2026-01-01"], "--since must be before --until."),
        (["--min-gold-accuracy", "lots"], "--min-gold-accuracy must be a number between 0 "
                                          "and 1."),
        (["--judge", "robot"], "--judge must be 'human' or 'metric:<name>', got 'robot'."),
    ]
    for options, message in cases:
        with pytest.raises(CommandError) as refused:
            call_command("leaderboard", campaign, *options, stdout=io.StringIO())
        assert str(refused.value) == message


def test_metric_judges_command(world):
    for image in Image.objects.filter(run__in=world.runs):
        set_image_metric(image, "clip_score", float(image.run_id), calibrated=False)
    out = io.StringIO()
    call_command("metric_judges", str(world.campaign.pk), stdout=out)
    assert "uncalibrated" in out.getvalue() and "cast" in out.getvalue()
    out = io.StringIO()
    call_command("metric_judges", str(world.campaign.pk), stdout=out)
    assert " 0 cast" in out.getvalue()


def test_dashboard_pages_render_for_scientists(world):
    client = logged_in(world.scientist)
    home = client.get("/dashboard/")
    assert home.status_code == 200 and b"campaign" in home.content
    page = client.get(f"/dashboard/campaigns/{world.campaign.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("alpha-run", "beta-run", "gamma-run"):
        assert name in html
    assert "uncalibrated" in html
    assert 'data-figure="elo-data"' in html and 'id="winrate-observed-data"' in html
    assert "/static/vendor/plotly/plotly-cartesian-" in html and "cdn" not in html.lower()
    assert "Possible ranks" in html and "whole 95% Elo interval lies above" in html
    assert "Left image wins" in html
    filtered = client.get(f"/dashboard/campaigns/{world.campaign.pk}/",
                          {"category": "counting", "ab_a": world.runs[2].id,
                           "ab_b": world.runs[0].id})
    assert filtered.status_code == 200 and "beats" in filtered.content.decode()
    bad = client.get(f"/dashboard/campaigns/{world.campaign.pk}/", {"criterion": "zzz"})
    assert bad.status_code == 200 and "Unknown criterion" in bad.content.decode()
    model_id = world.runs[0].checkpoint.model_id
    model_page = client.get(f"/dashboard/models/{model_id}/")
    assert model_page.status_code == 200
    html = model_page.content.decode()
    assert "alpha-run" in html and "uncalibrated" in html and "checkpoint-elo" in html


def test_dashboards_do_not_leak(world):
    model_id = world.runs[0].checkpoint.model_id
    pages = [f"/dashboard/campaigns/{world.campaign.pk}/", f"/dashboard/models/{model_id}/"]
    outsider = logged_in(UserFactory())
    for url in pages:
        assert outsider.get(url).status_code == 404
    home = outsider.get("/dashboard/").content.decode()
    assert pages[0] not in home and pages[1] not in home
    annotator = logged_in(world.annotators[0])
    for url in pages:
        assert annotator.get(url).status_code == 403
    anonymous = Client()
    assert anonymous.get(pages[0]).status_code == 302
