"""Inputs that used to reach a server error get a clear 4xx answer instead."""

import io
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
    "/dashboard/campaigns/99999999999999999999/",
    "/rate/99999999999999999999/",
])
def test_page_ids_that_cannot_be_ids_are_404(api, world, path):
    api.force_login(world.scientist)
    response = api.get(path)
    assert response.status_code == 404
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
    # Ids no database column can hold answer as an object that is not there.
    "/api/v1/runs/99999999999999999999999/",
    "/api/v1/campaigns/99999999999999999999999/quality/",
    "/api/v1/rate/99999999999999999999/next/",
    "/api/v1/campaigns/99999999999999999999/leaderboard/",
])
def test_every_api_404_has_one_shape(api, world, path):
    api.force_login(world.scientist)
    response = api.get(path) if "next" not in path else api.post(path, {}, format="json")
    assert response["Content-Type"] == "application/json"
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


def test_every_duplicate_name_is_409_with_one_shape(api, world, settings):
    project = world.campaign.project
    run = world.runs[0]
    api.force_login(world.owner)
    _assert_duplicate(api.post("/api/v1/projects/", {"name": "again", "slug": project.slug},
                               format="json"), "slug")
    # No slug given: the one made from the name is taken, said the same way.
    settings.EVALHUB_PROJECT_CREATORS = "anyone"
    assert api.post("/api/v1/projects/", {"name": "Demo"}, format="json").status_code == 201
    _assert_duplicate(api.post("/api/v1/projects/", {"name": "Demo"}, format="json"), "slug")
    _assert_duplicate(api.post("/api/v1/prompt-sets/", {
        "project": project.pk, "name": run.prompt_set.name}, format="json"), "name")
    upload = io.BytesIO(b"a red cube\n")
    upload.name = "p.txt"
    _assert_duplicate(api.post("/api/v1/prompt-sets/import/", {
        "project": project.pk, "name": run.prompt_set.name, "file": upload},
        format="multipart"), "name")
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


# A lone UTF-16 surrogate has no UTF-8 form (the database driver failed to encode it: a 500)
# and PostgreSQL's jsonb holds no NUL: both are refused in any key or string of a JSON field.
@pytest.mark.parametrize("parameters, refusal", [
    ({"note": "\ud800"}, "Surrogate characters are not allowed: U+D800."),
    ({"\udc00": 1}, "Surrogate characters are not allowed: U+DC00."),
    ({"deep": [{"x": "a cat \ud83d"}]}, "Surrogate characters are not allowed: U+D83D."),
    ({"note": "\x00"}, "Null characters are not allowed."),
])
def test_a_json_field_refuses_what_the_database_cannot_store(api, world, parameters, refusal):
    run = world.runs[0]
    api.force_login(world.owner)

    def post(path, body):  # as a client sends it: JSON text, with \ud800 as an escape
        return api.post(path, json.dumps(body), content_type="application/json")

    checkpoint = post("/api/v1/checkpoints/", {
        "model": run.checkpoint.model_id, "name": "x", "generator": "imported",
        "parameters": parameters})
    assert checkpoint.status_code == 400
    assert checkpoint.json() == {"parameters": [refusal]}
    new_run = post("/api/v1/runs/", {
        "checkpoint": run.checkpoint_id, "prompt_set": run.prompt_set_id, "name": "new",
        "seeds": [0], "parameters": parameters})
    assert new_run.status_code == 400
    assert new_run.json()["parameters"] == [refusal]
    job = post("/api/v1/metric-jobs/", {"run": run.pk, "metrics": ["clip_score"],
                                        "options": parameters})
    assert job.status_code == 400
    assert job.json()["options"] == [refusal]


def test_a_prompt_file_with_a_lone_surrogate_is_a_400_naming_its_line(api, world):
    api.force_login(world.owner)
    upload = io.BytesIO(b'{"text": "fine"}\n{"text": "a cat \\ud83d"}\n')
    upload.name = "p.jsonl"
    response = api.post("/api/v1/prompt-sets/import/", {
        "project": world.campaign.project_id, "name": "surrogates", "file": upload},
        format="multipart")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert any(error.startswith("line 2:") and "U+D83D" in error
               for error in response.json()["errors"])


# A name (docs/security.md): NFC-normalised, no control or format character, wherever given.
def test_a_name_is_normalised_so_lookalikes_are_one_name(api, world):
    project = world.campaign.project
    api.force_login(world.owner)
    first = api.post("/api/v1/models/", {"project": project.pk, "name": "caf\u00e9"},
                     format="json")
    assert first.status_code == 201
    again = api.post("/api/v1/models/", {"project": project.pk, "name": "cafe\u0301"},
                     format="json")
    _assert_duplicate(again, "name")
    spaced = api.post("/api/v1/prompt-sets/", {"project": project.pk, "name": " cafe\u0301 "},
                      format="json")
    assert spaced.status_code == 201
    assert spaced.json()["name"] == "caf\u00e9"


@pytest.mark.parametrize("name", [
    "shapes\u200b-base", "red\x1b[31m", "bell\x07", "two\nlines", "tab\tbed", "abc\u202edcb",
    "soft\u00adhyphen", "\ufeffbom", "line\u2028two", "tag\U000e0067",
    # a joiner where no word or emoji needs one: at an end, doubled, beside a space
    "sdxl\u200d", "\u200d", "a\u200d\u200db", "a \u200cb"])
def test_a_name_with_a_control_or_invisible_character_is_refused(api, world, name):
    project = world.campaign.project
    run = world.runs[0]
    api.force_login(world.owner)
    for path, body in [
        ("/api/v1/projects/", {"name": name, "slug": "fresh"}),
        ("/api/v1/models/", {"project": project.pk, "name": name}),
        ("/api/v1/checkpoints/", {"model": run.checkpoint.model_id, "name": name}),
        ("/api/v1/prompt-sets/", {"project": project.pk, "name": name}),
        ("/api/v1/reference-sets/", {"project": project.pk, "name": name}),
        ("/api/v1/runs/", {"checkpoint": run.checkpoint_id, "prompt_set": run.prompt_set_id,
                           "name": name, "seeds": [0]}),
        ("/api/v1/campaigns/", {"project": project.pk, "name": name,
                                "runs": [r.pk for r in world.runs]}),
    ]:
        response = api.post(path, body, format="json")
        assert response.status_code == 400, (path, response.json())
        assert response.json()["name"][0].startswith(("A name cannot contain the ",
                                                       "A name can hold the joiner")), path
    renamed = api.patch(f"/api/v1/runs/{run.pk}/", {"name": name}, format="json")
    assert renamed.status_code == 400


@pytest.mark.parametrize("name", [
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # a Persian word with its ZWNJ
    "rainbow \U0001f3f3\ufe0f\u200d\U0001f308",  # an emoji ZWJ sequence
    "england \U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # tags
])
def test_a_name_keeps_the_joiners_words_and_emoji_need(api, world, name):
    api.force_login(world.owner)
    response = api.post("/api/v1/models/", {"project": world.campaign.project.pk, "name": name},
                        format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["name"] == name
