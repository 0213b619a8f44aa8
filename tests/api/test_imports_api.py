"""Imports through the REST API: multipart uploads, atomic, errors as 400 with details."""

import io

import pytest

from evalhub.runs.models import GenerationRun
from tests.factories import CheckpointFactory, GenModelFactory, png_bytes
from tests.runs.helpers import distinct_pngs, make_zip, manifest_csv

pytestmark = pytest.mark.django_db


def _upload(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


@pytest.fixture
def prompt_set_id(api, scientist, project):
    api.force_authenticate(scientist)
    response = api.post("/api/v1/prompt-sets/import/", {
        "project": project.id,
        "name": "shapes",
        "file": _upload(
            "p.csv", b"text,category\na red circle,colour\ntwo blue squares,counting\n"
        ),
    }, format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["prompt_count"] == 2
    assert response.json()["categories"] == ["colour", "counting"]
    return response.json()["id"]


def test_a_prompt_file_with_errors_gives_400_with_every_problem(api, scientist, project):
    api.force_authenticate(scientist)
    response = api.post("/api/v1/prompt-sets/import/", {
        "project": project.id, "name": "bad",
        "file": _upload("p.jsonl", b'{"text": "ok"}\n{oops\n{"text": ""}\n'),
    }, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert "nothing was imported" in body["detail"]
    assert len(body["errors"]) == 2
    assert not project.prompt_sets.exists()


def test_prompt_sets_with_source_images_for_editing(api, scientist, project):
    api.force_authenticate(scientist)
    response = api.post("/api/v1/prompt-sets/import/", {
        "project": project.id, "name": "edits",
        "file": _upload("p.jsonl", b'{"text": "make it blue", "source_image": "in/cat.png"}\n'),
        "images": _upload("src.zip", _zip_bytes({"in/cat.png": png_bytes()})),
    }, format="multipart")
    assert response.status_code == 201, response.json()
    prompts = api.get("/api/v1/prompts/", {"prompt_set": response.json()["id"]}).json()
    assert len(prompts["results"][0]["source_image_sha256"]) == 64


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return make_zip(Path(tmp) / "a.zip", files).read_bytes()


def test_a_run_is_created_and_its_images_uploaded(api, scientist, project, prompt_set_id):
    checkpoint = CheckpointFactory(model=GenModelFactory(project=project))
    created = api.post("/api/v1/runs/", {
        "checkpoint": checkpoint.id, "prompt_set": prompt_set_id, "name": "step-1000",
    }, format="json")
    assert created.status_code == 201, created.json()
    run_id = created.json()["id"]
    a, b = distinct_pngs(2)
    archive = _zip_bytes({"a.png": a, "b.png": b, "manifest.csv": manifest_csv(
        [("a.png", "a red circle", 0), ("b.png", "two blue squares", 0)])})

    response = api.post(f"/api/v1/runs/{run_id}/import-images/",
                        {"archive": _upload("run.zip", archive)}, format="multipart")

    assert response.status_code == 201, response.json()
    assert response.json()["images_created"] == 2
    run = api.get(f"/api/v1/runs/{run_id}/").json()
    assert (run["status"], run["image_count"]) == ("completed", 2)
    images = api.get("/api/v1/images/", {"run": run_id}).json()["results"]
    assert {img["width"] for img in images} == {16}
    assert all(img["url"].startswith("/media/blobs/") for img in images)


def test_a_run_created_with_its_archive_answers_what_the_import_did(api, scientist, project,
                                                                    prompt_set_id):
    checkpoint = CheckpointFactory(model=GenModelFactory(project=project))
    archive = _zip_bytes({"a.png": distinct_pngs(1)[0], "README.txt": b"seed 0 only",
                          ".DS_Store": b"\x00\x00\x00\x01Bud1",
                          "manifest.csv": manifest_csv([("a.png", "a red circle", 0)])})

    created = api.post("/api/v1/runs/", {
        "checkpoint": checkpoint.id, "prompt_set": prompt_set_id, "name": "in-one-request",
        "archive": _upload("run.zip", archive)}, format="multipart")

    assert created.status_code == 201, created.json()
    assert created.json()["image_count"] == 1
    assert created.json()["import_report"] == {
        "images_created": 1, "blobs_created": 1, "duplicates_of_existing_blobs": 0,
        "files_skipped": 2, "skipped_files": [".DS_Store", "README.txt"]}
    # Only the create's answer says it: the run itself does not keep it.
    assert api.get(f"/api/v1/runs/{created.json()['id']}/").json()["import_report"] is None


def test_an_upload_with_an_escaping_entry_is_refused_and_stores_nothing(
    api, scientist, project, prompt_set_id
):
    checkpoint = CheckpointFactory(model=GenModelFactory(project=project))
    run = api.post("/api/v1/runs/", {"checkpoint": checkpoint.id, "prompt_set": prompt_set_id,
                                     "name": "r"}, format="json").json()
    archive = _zip_bytes({"../../x.png": png_bytes(), "manifest.csv": manifest_csv(
        [("x.png", "a red circle", 0)])})
    response = api.post(f"/api/v1/runs/{run['id']}/import-images/",
                        {"archive": _upload("run.zip", archive)}, format="multipart")
    assert response.status_code == 400
    assert "escape" in response.json()["detail"]
    assert GenerationRun.objects.get(id=run["id"]).images.count() == 0


def test_a_run_cannot_mix_projects(api, scientist, project, prompt_set_id):
    from tests.factories import MembershipFactory

    other = MembershipFactory(user=scientist).project
    checkpoint = CheckpointFactory(model=GenModelFactory(project=other))
    response = api.post("/api/v1/runs/", {"checkpoint": checkpoint.id,
                                          "prompt_set": prompt_set_id, "name": "mixed"},
                        format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "prompt_set: no such object in this project."


def test_the_openapi_schema_is_for_signed_in_users_only(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 401


def test_the_openapi_schema_describes_the_api(api, scientist):
    api.force_authenticate(scientist)
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/runs/{id}/import-images/" in paths
    assert "/api/v1/prompt-sets/import/" in paths


def test_the_openapi_schema_documents_the_import_report_of_a_run_create(api, scientist):
    api.force_authenticate(scientist)
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    field = schema["components"]["schemas"]["GenerationRun"]["properties"]["import_report"]
    assert field["readOnly"] is True and field["nullable"] is True
    assert field["allOf"] == [{"$ref": "#/components/schemas/ImportReport"}]
    assert "skipped_files" in schema["components"]["schemas"]["ImportReport"]["properties"]
