"""Inputs that used to reach a server error get a clear 4xx answer instead."""

import json
import uuid

import pytest

from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_campaign(prompts=2)


def test_a_body_over_the_upload_limit_is_413_with_the_limit_named(api, world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    api.force_login(world.annotator)
    body = json.dumps({"exclude": [], "padding": "x" * 20_000})
    response = api.post(f"/api/v1/rate/{world.campaign.pk}/next/", body,
                        content_type="application/json")
    assert response.status_code == 413
    assert "10000" in response.json()["detail"]


def test_deeply_nested_json_is_a_400(api, world):
    api.force_login(world.annotator)
    body = "[" * 100_000 + "]" * 100_000
    response = api.post(f"/api/v1/rate/{world.campaign.pk}/votes/", body,
                        content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


@pytest.mark.parametrize("path", [
    "/api/v1/runs/99999999999999999999999/",
    "/api/v1/campaigns/99999999999999999999999/quality/",
    "/api/v1/rate/99999999999999999999/next/",
    "/api/v1/campaigns/99999999999999999999/leaderboard/",
    "/dashboard/campaigns/99999999999999999999/",
    "/rate/99999999999999999999/",
])
def test_ids_that_cannot_be_ids_are_404(api, world, path):
    api.force_login(world.scientist)
    response = api.get(path) if "next" not in path else api.post(path, {}, format="json")
    assert response.status_code == 404
    if path.startswith("/api/"):  # an API client gets JSON, as for an object that is not there
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "not_found"
    else:
        assert "Nothing here" in response.content.decode()


def test_an_unknown_api_endpoint_answers_json(api, world):
    api.force_login(world.scientist)
    for path in ("/api/", "/api/v1/", "/api/v1/no-such-thing/", "/api/v2/runs/"):
        response = api.get(path)
        if response.status_code == 200:  # the API root lists the endpoints
            assert path == "/api/v1/"
            continue
        assert response.status_code == 404, path
        assert response.json()["detail"].startswith("Not found"), path


def test_a_lease_id_that_is_not_a_uuid_is_404(api, world):
    api.force_login(world.annotator)
    bad = "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"
    response = api.post(f"/api/v1/rate/{world.campaign.pk}/leases/{bad}/skip/", {},
                        format="json")
    assert response.status_code == 404
    other = api.post(f"/api/v1/rate/{world.campaign.pk}/leases/{uuid.uuid4()}/fly/", {},
                     format="json")
    assert other.status_code == 404


def test_deleting_a_prompt_set_that_runs_still_use_is_409(api, world):
    api.force_login(world.owner)
    prompt_set = world.runs[0].prompt_set
    response = api.delete(f"/api/v1/prompt-sets/{prompt_set.pk}/")
    assert response.status_code == 409, response.content
    assert "still in use" in response.json()["detail"]
    assert prompt_set.__class__.objects.filter(pk=prompt_set.pk).exists()


@pytest.mark.parametrize("path", [
    "/api/v1/runs/99999/",  # Django's words named the model: "No GenerationRun matches..."
    "/api/v1/runs/1.0/",
    "/api/v1/runs/abc/",
    "/api/v1/prompt-sets/99999/",
    "/api/v1/memberships/99999/",
    "/api/v1/metric-jobs/99999/",
    "/api/v1/campaigns/99999/quality/",
    "/api/v1/runs/?page=999",
    "/api/v1/no-such-thing/",
])
def test_every_api_404_has_one_shape(api, world, path):
    api.force_login(world.scientist)
    response = api.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_another_projects_object_is_answered_as_an_unused_id(api, world):
    other = build_campaign(prompts=1)
    api.force_login(world.scientist)
    theirs = api.get(f"/api/v1/runs/{other.runs[0].pk}/")
    assert theirs.status_code == 404
    assert theirs.json() == api.get("/api/v1/runs/99999/").json()


def _assert_duplicate(response, field: str) -> None:
    """Every name already taken: 409, code ``duplicate``, the field named in ``errors``."""
    assert response.status_code == 409, response.json()
    body = response.json()
    assert sorted(body) == ["code", "detail", "errors"]
    assert body["code"] == "duplicate"
    assert body["errors"] == [f"{field}: {body['detail']}"]


def test_every_duplicate_name_is_409_with_one_shape(api, world):
    project = world.campaign.project
    run = world.runs[0]
    api.force_login(world.owner)
    _assert_duplicate(api.post("/api/v1/projects/", {"name": "again", "slug": project.slug},
                               format="json"), "slug")
    _assert_duplicate(api.post("/api/v1/prompt-sets/", {
        "project": project.pk, "name": run.prompt_set.name}, format="json"), "name")
    _assert_duplicate(api.post("/api/v1/models/", {
        "project": project.pk, "name": run.checkpoint.model.name}, format="json"), "name")
    _assert_duplicate(api.post("/api/v1/checkpoints/", {
        "model": run.checkpoint.model_id, "name": run.checkpoint.name}, format="json"), "name")
    references = {"project": project.pk, "name": "refs"}
    assert api.post("/api/v1/reference-sets/", references, format="json").status_code == 201
    _assert_duplicate(api.post("/api/v1/reference-sets/", references, format="json"), "name")
    _assert_duplicate(api.post("/api/v1/runs/", {
        "checkpoint": run.checkpoint_id, "prompt_set": run.prompt_set_id, "name": run.name,
        "seeds": [0]}, format="json"), "name")
    _assert_duplicate(api.patch(f"/api/v1/runs/{world.runs[1].pk}/", {"name": run.name},
                                format="json"), "name")
    _assert_duplicate(api.post("/api/v1/campaigns/", {
        "project": project.pk, "name": world.campaign.name,
        "runs": [r.pk for r in world.runs]}, format="json"), "name")
    _assert_duplicate(api.post("/api/v1/memberships/", {
        "project": project.pk, "username": world.scientist.username, "role": "annotator"},
        format="json"), "username")


def test_a_domain_refusal_lists_its_problems_in_errors(api, world):
    # One problem is listed too; a field's problem starts with the field's name.
    api.force_login(world.scientist)
    response = api.post(f"/api/v1/campaigns/{world.campaign.pk}/exclude/",
                        {"annotator": 2**62}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [response.json()["detail"]]
    assert response.json()["detail"].startswith("annotator: ")
    out_of_range = api.post("/api/v1/campaigns/", {
        "project": world.campaign.project_id, "name": "many", "judgments_per_pair": 51,
        "runs": [r.pk for r in world.runs]}, format="json")
    assert out_of_range.status_code == 400
    assert list(out_of_range.json()) == ["judgments_per_pair"]
