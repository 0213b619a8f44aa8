"""An image's preview shows once its own project's work on it has run, never sooner: a file
whose bytes another project already holds (its preview made long ago) reads exactly like a new
file until the preview task queued for *this* import or generation has run (docs/security.md,
"Anonymity across projects").

The attack this closes: a person who is an annotator in project A and an owner in project B
imports into B a file they suspect A shows blind; had B's image API, gallery or media view
shown its preview at once (while a new file's appears seconds later), B would have told them
that A holds the same bytes."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.previews import blob_make_preview
from evalhub.generation.services import generation_run_batch
from evalhub.projects.models import Role
from evalhub.runs.models import Image, RunSource, RunStatus
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    GenModelFactory,
    ImageFactory,
    MembershipFactory,
    ProjectFactory,
    PromptFactory,
    PromptSetFactory,
    UserFactory,
    png_bytes,
)
from tests.runs.helpers import make_zip, manifest_csv, run_sent

pytestmark = pytest.mark.django_db

PROMPT = "a red circle"
HELD_IN_A = png_bytes(color=(12, 34, 56), size=(40, 40))
NEW = png_bytes(color=(200, 100, 1), size=(40, 40))


@pytest.fixture
def dual():
    """Project A holds HELD_IN_A (its preview made) in a run; ``dual`` annotates A and owns
    B, whose imported run has one prompt."""
    a, b = ProjectFactory(), ProjectFactory()
    user = UserFactory(username="dual")
    MembershipFactory(project=a, user=user, role=Role.ANNOTATOR)
    MembershipFactory(project=b, user=user, role=Role.OWNER)
    held = ImageFactory(run=GenerationRunFactory(checkpoint__model__project=a),
                        blob=_blob(HELD_IN_A))
    assert blob_make_preview(held.blob)
    run = GenerationRunFactory(checkpoint__model__project=b, source=RunSource.IMPORTED)
    PromptFactory(prompt_set=run.prompt_set, text=PROMPT)
    return user, run


def _blob(data: bytes) -> ImageBlob:
    from evalhub.blobs.services import blob_store_bytes

    return blob_store_bytes(data, name="x.png")


def _upload(path) -> io.BytesIO:
    handle = io.BytesIO(path.read_bytes())
    handle.name = path.name
    return handle


def _derivatives(payload: dict) -> dict:
    """What of an image's API payload depends on work done after the import."""
    return {"preview_url": payload["preview_url"]}


def test_a_file_another_project_holds_shows_its_preview_no_sooner_than_a_new_file(
        api, dual, tmp_path, sent_tasks, django_capture_on_commit_callbacks):
    user, run = dual
    archive = make_zip(tmp_path / "b.zip", {
        "held.png": HELD_IN_A, "new.png": NEW,
        "manifest.csv": manifest_csv([("held.png", PROMPT, 0), ("new.png", PROMPT, 1)])})
    api.force_authenticate(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/runs/{run.pk}/import-images/",
                            {"archive": _upload(archive)}, format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["duplicates_of_existing_blobs"] == 0

    images = api.get("/api/v1/images/", {"run": run.pk}).json()["results"]
    assert len(images) == 2
    assert [_derivatives(image) for image in images] == [{"preview_url": None}] * 2
    held = Image.objects.get(run=run, seed=0)
    assert held.blob.preview  # made for project A: B must not show it yet
    client = Client()
    client.force_login(user)
    for image in Image.objects.filter(run=run):
        page = client.get(f"/gallery/images/{image.pk}/")
        assert page.status_code == 200
        assert ">preview</a>" not in page.content.decode()
    # Nor may the media view answer for it: its path is the content hash, which B's API shows.
    assert client.get(held.blob.preview.url).status_code == 404

    run_sent(sent_tasks)

    images = api.get("/api/v1/images/", {"run": run.pk}).json()["results"]
    urls = [image["preview_url"] for image in images]
    assert all(url and url.endswith(".webp") for url in urls), urls
    for image in Image.objects.filter(run=run).select_related("blob"):
        page = client.get(f"/gallery/images/{image.pk}/").content.decode()
        assert ">preview</a>" in page
        assert client.get(image.blob.preview.url).status_code == 200


def test_a_generated_output_another_project_holds_shows_its_preview_only_after_its_task(
        api, sent_tasks, django_capture_on_commit_callbacks):
    """The same for a generated run: the `shapes` generator draws the same bytes for the same
    prompt and seed, in any project."""
    runs = []
    for project in (ProjectFactory(), ProjectFactory()):
        run = GenerationRunFactory(
            checkpoint=CheckpointFactory(model=GenModelFactory(project=project),
                                         generator="shapes"),
            prompt_set=PromptSetFactory(project=project), source=RunSource.GENERATED,
            seeds=[3], items_total=1, status=RunStatus.QUEUED)
        PromptFactory(prompt_set=run.prompt_set, text="two red circles", position=0)
        runs.append(run)
    first, second = runs
    with django_capture_on_commit_callbacks(execute=True):
        generation_run_batch(run=first, start=0, stop=1)
    run_sent(sent_tasks)
    assert first.images.get().blob.preview

    with django_capture_on_commit_callbacks(execute=True):
        generation_run_batch(run=second, start=0, stop=1)
    image = second.images.get()
    assert image.blob_id == first.images.get().blob_id
    owner = MembershipFactory(project=second.project, role=Role.OWNER).user
    api.force_authenticate(owner)
    assert api.get(f"/api/v1/images/{image.pk}/").json()["preview_url"] is None
    run_sent(sent_tasks)
    assert api.get(f"/api/v1/images/{image.pk}/").json()["preview_url"].endswith(".webp")


def test_the_preview_task_of_an_image_makes_the_preview_it_marks_ready(
        sent_tasks, django_capture_on_commit_callbacks, api):
    """A new file's preview is made by the image's own task if no other made it first, so the
    mark never says ready before the file exists."""
    from evalhub.runs.previews import images_make_previews

    image = ImageFactory(blob=_blob(NEW))
    assert not image.blob.preview and not image.preview_ready
    assert images_make_previews([image.pk]) == 1
    image.refresh_from_db()
    assert image.preview_ready and image.blob.preview
    assert image.preview == image.blob.preview
    assert images_make_previews([image.pk]) == 0  # a redelivered task does nothing
