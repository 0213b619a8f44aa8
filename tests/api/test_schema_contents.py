"""What the published OpenAPI schema says: error answers, request bodies, descriptions.

The schemathesis run (test_schema_fuzzing.py) checks answers against the schema; these tests
check the schema's own promises that no answer shows.
"""

import pytest
from drf_spectacular.generators import SchemaGenerator

from evalhub.campaigns.models import AnnotatorFlag
from tests.builders import build_campaign
from tests.factories import UserFactory


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _resolve(schema, ref_or_schema):
    ref = ref_or_schema.get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else ref_or_schema


def test_request_bodies_never_require_a_read_only_field(schema):
    for method, path, operation in _operations(schema):
        for content in operation.get("requestBody", {}).get("content", {}).values():
            body = _resolve(schema, content["schema"])
            read_only = {name for name, prop in body.get("properties", {}).items()
                         if prop.get("readOnly")}
            assert not read_only & set(body.get("required", [])), (method, path)


def test_every_operation_documents_its_error_answers(schema):
    for method, path, operation in _operations(schema):
        codes = set(operation["responses"])
        if path != "/api/v1/auth/token/":  # open to everyone: no 401/403
            assert {"401", "403"} <= codes, (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
        if method != "GET":
            assert {"400", "409"} <= codes, (method, path)
    throttled = schema["paths"]["/api/v1/rate/{campaign_id}/votes/"]["post"]["responses"]
    assert "429" in throttled


def test_uploads_document_that_a_json_body_is_refused(schema):
    # They read multipart/form-data only and answer 415 to JSON; the schema did not say so.
    uploads = [("/api/v1/prompt-sets/import/", "post"), ("/api/v1/runs/{id}/import-images/",
                                                         "post"),
               ("/api/v1/reference-sets/{id}/import-images/", "post")]
    for path, method in uploads:
        operation = schema["paths"][path][method]
        assert "application/json" not in operation["requestBody"]["content"], path
        assert "415" in operation["responses"], path
    for method, path, operation in _operations(schema):
        if "requestBody" in operation:
            assert "415" in operation["responses"], (method, path)


@pytest.mark.django_db
def test_a_json_body_sent_to_an_upload_is_answered_as_documented(api):
    world = build_campaign(prompts=1, annotators=0)
    api.force_authenticate(world.scientist)
    response = api.post("/api/v1/prompt-sets/import/", {
        "project": world.campaign.project_id, "name": "json"}, format="json")
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]


def test_descriptions_are_written_for_api_users_not_inherited_developer_notes(schema):
    texts = [operation.get("description", "") for _, _, operation in _operations(schema)]
    texts += [component.get("description", "")
              for component in schema["components"]["schemas"].values()]
    assert not [text for text in texts if "ModelSerializer" in text or "Querysets" in text
                or "project_path" in text]


def test_the_quality_endpoint_documents_what_it_returns(schema):
    ok = schema["paths"]["/api/v1/campaigns/{id}/quality/"]["get"]["responses"]["200"]
    body = _resolve(schema, ok["content"]["application/json"]["schema"])
    assert set(body["properties"]) == {"annotators", "agreement", "latency_outliers"}
    annotator = _resolve(schema, body["properties"]["annotators"]["items"])
    # Every field the answer carries is documented (tests/leaderboards/test_quality_flags_agree
    # reads them from a real answer).
    assert {"flags", "reasons", "weight", "median_vote_ms", "excluded"} <= set(
        annotator["properties"])
    failures = schema["paths"]["/api/v1/runs/{id}/failures/"]["get"]["responses"]["200"]
    assert failures["content"]["application/json"]["schema"]["type"] == "array"


@pytest.mark.django_db
def test_excluding_someone_who_is_not_a_member_is_refused_like_a_missing_id(api):
    world = build_campaign(prompts=1, annotators=1)
    stranger = UserFactory()
    api.force_authenticate(world.scientist)
    url = f"/api/v1/campaigns/{world.campaign.pk}/exclude/"
    for annotator in (stranger.pk, 10**9):
        response = api.post(url, {"annotator": annotator}, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["detail"] == "annotator: no such object in this project."
    assert not AnnotatorFlag.objects.exists()
    member = api.post(url, {"annotator": world.annotator.pk}, format="json")
    assert member.status_code == 200
    assert member.json() == {"annotator": world.annotator.pk, "excluded": True}
