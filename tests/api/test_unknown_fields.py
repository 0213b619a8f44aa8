"""A body key that names no field is refused with the fields the endpoint takes, instead of
being dropped: a typo must not create an object with a default the client did not ask for."""

import pytest

from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_campaign(prompts=2)


def test_a_misspelt_campaign_field_creates_nothing(api, world):
    api.force_login(world.scientist)
    project = world.campaign.project
    response = api.post("/api/v1/campaigns/", {
        "project": project.pk, "name": "typo", "runs": [run.pk for run in world.runs],
        "judgments_per_pairs": 5}, format="json")
    assert response.status_code == 400
    message = response.json()["judgments_per_pairs"][0]
    assert "Unknown field" in message and "judgments_per_pair" in message
    assert not project.campaigns.filter(name="typo").exists()


def test_a_model_write_with_an_unknown_key_changes_nothing(api, world):
    api.force_login(world.scientist)
    run = world.runs[0]
    response = api.patch(f"/api/v1/runs/{run.pk}/", {"name": "renamed", "colour": "red"},
                         format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["colour"]
    run.refresh_from_db()
    assert run.name != "renamed"


def test_unknown_keys_named_like_the_error_answers_own_keys_are_named_in_its_detail(api, world):
    # Under their own names they made `detail` a list, against the documented answer (a
    # sentence): schemathesis sent {"": [], "detail": {}, ...} to POST /checkpoints/.
    api.force_login(world.scientist)
    response = api.post("/api/v1/checkpoints/", {
        "model": world.campaign.runs.first().checkpoint.model_id, "name": "typo",
        "": [], "detail": {}, "code": 1}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == (
        "Unknown fields: code, detail. This endpoint takes: model, name, training_step, "
        "weights_uri, generator, parameters.")
    assert body[""] == ["Unknown field. This endpoint takes: model, name, training_step, "
                        "weights_uri, generator, parameters."]
    assert set(body) == {"", "detail"}


def test_a_body_sent_back_as_fetched_is_accepted(api, world):
    # Read-only fields (id, created_at, status...) are fields: a fetched body, edited and sent
    # back, still works, since each read-only value is the object's own.
    api.force_login(world.scientist)
    run = world.runs[0]
    body = api.get(f"/api/v1/runs/{run.pk}/").json()
    body["name"] = "renamed"
    response = api.patch(f"/api/v1/runs/{run.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    run.refresh_from_db()
    assert run.name == "renamed"


def test_the_browsable_api_form_with_its_csrf_token_still_creates(api, world):
    # DRF's HTML forms post a csrfmiddlewaretoken field beside the serializer's fields.
    api.force_login(world.scientist)
    response = api.post("/api/v1/models/", {
        "project": world.campaign.project_id, "name": "from the form",
        "csrfmiddlewaretoken": "x" * 32})
    assert response.status_code == 201, response.content


def test_an_uploads_misspelt_option_is_refused_not_dropped(api, world):
    # "skip_existng" used to import with skip_existing false, as if it had not been sent.
    api.force_login(world.scientist)
    run = world.runs[0]
    response = api.post(f"/api/v1/runs/{run.pk}/import-images/", {"skip_existng": "true"})
    assert response.status_code == 400
    assert list(response.json()) == ["skip_existng"]
    assert "skip_existing" in response.json()["skip_existng"][0]


def _new_run(world, **extra) -> dict:
    run = world.runs[0]
    return {"checkpoint": run.checkpoint_id, "prompt_set": run.prompt_set_id, "name": "new",
            "seeds": [0], **extra}


def test_a_run_created_with_another_project_is_refused(api, world):
    # The run's project is its checkpoint's: "project": other was silently ignored.
    api.force_login(world.scientist)
    project = world.campaign.project
    response = api.post("/api/v1/runs/", _new_run(world, project=project.pk + 1000),
                        format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["project"]
    assert "checkpoint's" in response.json()["project"][0]
    assert not project.runs.filter(name="new").exists()


def test_a_run_created_with_its_checkpoints_project_is_accepted(api, world):
    api.force_login(world.scientist)
    project = world.campaign.project
    response = api.post("/api/v1/runs/", _new_run(world, project=project.pk), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["project"] == project.pk


def test_a_create_naming_a_server_set_field_is_refused(api, world):
    api.force_login(world.scientist)
    response = api.post("/api/v1/runs/", _new_run(world, status="done", items_done=7),
                        format="json")
    assert response.status_code == 400
    body = response.json()
    assert sorted(body) == ["items_done", "status"]
    assert body["status"][0].startswith("status is read-only")
    assert not world.campaign.project.runs.filter(name="new").exists()


def test_an_update_naming_another_project_or_id_is_refused_and_changes_nothing(api, world):
    api.force_login(world.scientist)
    run = world.runs[0]
    body = api.get(f"/api/v1/runs/{run.pk}/").json()
    response = api.patch(f"/api/v1/runs/{run.pk}/",
                         {**body, "name": "renamed", "project": run.project_id + 1000,
                          "id": run.pk + 1}, format="json")
    assert response.status_code == 400
    answer = response.json()
    assert sorted(answer) == ["id", "project"]
    assert answer["project"][0].startswith("project is read-only")
    run.refresh_from_db()
    assert run.name != "renamed"


def test_a_body_fetched_before_the_server_moved_its_state_is_still_accepted(api, world):
    # A worker moves a run's status and counts while a client edits its name: what the server
    # keeps up to date is not compared, so the body fetched earlier is not refused.
    api.force_login(world.scientist)
    run = world.runs[0]
    body = api.get(f"/api/v1/runs/{run.pk}/").json()
    stale = {**body, "name": "renamed", "status": "failed", "image_count": 0,
             "created_at": "2001-01-01T00:00:00+00:00"}
    response = api.patch(f"/api/v1/runs/{run.pk}/", stale, format="json")
    assert response.status_code == 200, response.json()
    run.refresh_from_db()
    assert run.name == "renamed" and run.status != "failed"


def test_a_checkpoint_fetched_and_put_back_is_accepted(api, world):
    api.force_login(world.scientist)
    checkpoint = world.runs[0].checkpoint
    body = api.get(f"/api/v1/checkpoints/{checkpoint.pk}/").json()
    response = api.put(f"/api/v1/checkpoints/{checkpoint.pk}/",
                       {**body, "name": "renamed"}, format="json")
    assert response.status_code == 200, response.json()
    # Its time written back by another library (microseconds, +00:00) is not compared.
    rewritten = api.put(f"/api/v1/checkpoints/{checkpoint.pk}/",
                        {**body, "created_at": "2001-01-01T00:00:00+00:00"}, format="json")
    assert rewritten.status_code == 200, rewritten.json()
