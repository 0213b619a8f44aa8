"""The workspace's set-up and progress pages: who may open them, and forms whose refusals are
shown next to their field with nothing stored.

One project holds a model with a `shapes` checkpoint, a prompt set of two prompts, a generated
run with one stored image and one failure, and a metric job half done.
"""

from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from evalhub.evaluation.definitions import JOB_METRICS, METRIC_LABELS
from evalhub.evaluation.models import JobStatus, MetricJob, MetricShard, ShardKind, ShardStatus
from evalhub.projects.models import Role
from evalhub.prompts.models import PromptSet
from evalhub.runs.models import (
    Checkpoint,
    GenerationFailure,
    GenerationRun,
    GenModel,
    MediaKind,
    ReferenceSet,
    RunSource,
    RunStatus,
)
from tests.builders import logged_in
from tests.core.test_security_headers import _inline_code
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    ImageFactory,
    MembershipFactory,
    ProjectFactory,
    PromptFactory,
    PromptSetFactory,
    UserFactory,
)
from tests.runs.helpers import distinct_pngs, make_zip, manifest_csv
from tests.videos import video_bytes

pytestmark = pytest.mark.django_db


@dataclass
class World:
    project: object
    scientist: object
    owner: object
    annotator: object
    checkpoint: Checkpoint
    prompt_set: PromptSet
    run: GenerationRun
    job: MetricJob


@pytest.fixture
def world() -> World:
    project = ProjectFactory()
    members = {role: MembershipFactory(project=project, role=role).user
               for role in (Role.SCIENTIST, Role.OWNER, Role.ANNOTATOR)}
    checkpoint = CheckpointFactory(model__project=project, generator="shapes", training_step=1000)
    prompt_set = PromptSetFactory(project=project, name="basics")
    prompts = [PromptFactory(prompt_set=prompt_set, position=i, text=f"a red circle {i}")
               for i in range(2)]
    run = GenerationRunFactory(checkpoint=checkpoint, prompt_set=prompt_set, name="gen-1",
                               source=RunSource.GENERATED, seeds=[0], status=RunStatus.RUNNING,
                               items_total=2, items_done=1, items_failed=1,
                               started_at=timezone.now() - timedelta(seconds=10))
    image = ImageFactory(run=run, prompt=prompts[0], seed=0)
    GenerationFailure.objects.create(run=run, prompt=prompts[1], seed=0,
                                     error="CUDA out of memory", attempts=3)
    job = MetricJob.objects.create(project=project, run=run, metrics=["clip_score"],
                                   shards_total=2, shards_done=1, images_total=1,
                                   status=JobStatus.RUNNING,
                                   started_at=timezone.now() - timedelta(seconds=4))
    MetricShard.objects.create(job=job, index=0, kind=ShardKind.RUN, item_ids=[image.pk],
                               status=ShardStatus.DONE)
    MetricShard.objects.create(job=job, index=1, kind=ShardKind.RUN, item_ids=[image.pk],
                               status=ShardStatus.RUNNING, error="worker lost; retrying")
    return World(project=project, scientist=members[Role.SCIENTIST], owner=members[Role.OWNER],
                 annotator=members[Role.ANNOTATOR], checkpoint=checkpoint,
                 prompt_set=prompt_set, run=run, job=job)


def _pages(world: World) -> list[str]:
    project = {"project_id": world.project.pk}
    return [reverse(name, kwargs=project) for name in (
        "workspace-models", "workspace-prompts", "workspace-runs", "workspace-references",
        "workspace-metrics")] + [
        reverse("workspace-run", kwargs={"run_id": world.run.pk}),
        reverse("workspace-run-progress", kwargs={"run_id": world.run.pk}),
        reverse("workspace-metric-job", kwargs={"job_id": world.job.pk}),
        reverse("workspace-metric-job-progress", kwargs={"job_id": world.job.pk}),
    ]


def _errors_of(response, field_id: str) -> str:
    """The text of the error list shown right under the field ``field_id``."""
    html = response.content.decode()
    marker = f'id="{field_id}_error"'
    assert marker in html, f"no errors next to {field_id}"
    return html.split(marker, 1)[1].split("</ul>", 1)[0]


# ------------------------------------------------------------------------------ permissions


def test_scientists_and_owners_open_every_page_with_no_inline_code(world):
    for user in (world.scientist, world.owner):
        client = logged_in(user)
        for url in [reverse("workspace-home"), *_pages(world)]:
            response = client.get(url)
            assert response.status_code == 200, url
            if response["Content-Type"].startswith("text/html"):
                assert _inline_code(response.content.decode()) == [], url
    home = logged_in(world.scientist).get(reverse("workspace-home")).content.decode()
    assert world.project.name in home


def test_anonymous_users_are_sent_to_sign_in(world):
    for url in [reverse("workspace-home"), *_pages(world)]:
        response = Client().get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url
    launch = reverse("workspace-run-launch", kwargs={"run_id": world.run.pk})
    assert Client().post(launch)["Location"].startswith("/accounts/login/")
    resume = reverse("workspace-metric-job-resume", kwargs={"job_id": world.job.pk})
    assert Client().post(resume)["Location"].startswith("/accounts/login/")


def test_annotators_get_403_and_outsiders_404_reading_or_writing(world):
    outsider = UserFactory()
    other_owner = MembershipFactory(role=Role.OWNER).user
    launch = reverse("workspace-run-launch", kwargs={"run_id": world.run.pk})
    resume = reverse("workspace-metric-job-resume", kwargs={"job_id": world.job.pk})
    for url in _pages(world):
        assert logged_in(world.annotator).get(url).status_code == 403, url
        assert logged_in(outsider).get(url).status_code == 404, url
        assert logged_in(other_owner).get(url).status_code == 404, url
    for url in [*_pages(world)[:5], launch, resume]:
        assert logged_in(world.annotator).post(url, {"name": "x"}).status_code == 403, url
        assert logged_in(outsider).post(url, {"name": "x"}).status_code == 404, url
    assert GenModel.objects.filter(name="x").count() == 0
    assert logged_in(world.scientist).get("/workspace/999999999/models/").status_code == 404
    assert logged_in(world.scientist).get("/workspace/runs/999999999/").status_code == 404
    assert logged_in(world.scientist).get("/workspace/metric-jobs/999999999/").status_code == 404
    # The list of workspaces shows only the caller's own science projects, and the layout
    # offers the Workspace link to owners and scientists only.
    annotator_home = logged_in(world.annotator).get(reverse("workspace-home")).content.decode()
    assert world.project.name not in annotator_home
    assert 'href="/workspace/"' not in annotator_home
    assert 'href="/workspace/"' in logged_in(world.scientist).get("/").content.decode()


# ------------------------------------------------------------------------------ models


def test_a_model_and_a_checkpoint_with_its_training_step_are_registered(world):
    client = logged_in(world.scientist)
    url = reverse("workspace-models", kwargs={"project_id": world.project.pk})
    response = client.post(url, {"form": "model", "model-name": "sdxl-ft",
                                 "model-description": "fine-tune"})
    assert response.status_code == 302
    model = GenModel.objects.get(project=world.project, name="sdxl-ft")
    response = client.post(url, {"form": "checkpoint", "checkpoint-model": model.pk,
                                 "checkpoint-name": "step-5000",
                                 "checkpoint-training_step": "5000",
                                 "checkpoint-generator": "shapes",
                                 "checkpoint-parameters": '{"width": 64}'})
    assert response.status_code == 302
    checkpoint = Checkpoint.objects.get(model=model)
    assert (checkpoint.name, checkpoint.training_step, checkpoint.generator,
            checkpoint.parameters) == ("step-5000", 5000, "shapes", {"width": 64})
    page = client.get(url).content.decode()
    assert "step-5000" in page and "5000" in page


def test_parameters_the_generator_refuses_are_named_next_to_the_field(world):
    client = logged_in(world.scientist)
    url = reverse("workspace-models", kwargs={"project_id": world.project.pk})
    before = Checkpoint.objects.count()
    response = client.post(url, {"form": "checkpoint",
                                 "checkpoint-model": world.checkpoint.model_id,
                                 "checkpoint-name": "typo", "checkpoint-generator": "shapes",
                                 "checkpoint-parameters": '{"widht": 64}'})
    assert response.status_code == 400
    assert "unknown checkpoint parameter(s) &#x27;widht&#x27;; known parameters: height" in (
        _errors_of(response, "id_checkpoint-parameters"))
    # What the database cannot store (a lone surrogate, as JSON spells it), and a name with a
    # control character (docs/security.md), are refused at their fields too, not a 500.
    for name, parameters, field, refusal in [
            ("odd", '{"note": "\\ud800"}', "parameters",
             "Surrogate characters are not allowed: U+D800."),
            ("bell\x07", "{}", "name", "A name cannot contain the control character U+0007.")]:
        refused = client.post(url, {"form": "checkpoint",
                                    "checkpoint-model": world.checkpoint.model_id,
                                    "checkpoint-name": name, "checkpoint-generator": "shapes",
                                    "checkpoint-parameters": parameters})
        assert refused.status_code == 400
        assert refusal in _errors_of(refused, f"id_checkpoint-{field}")
    assert Checkpoint.objects.count() == before


def test_checkpoint_errors_are_next_to_their_fields_and_nothing_is_stored(world):
    client = logged_in(world.scientist)
    url = reverse("workspace-models", kwargs={"project_id": world.project.pk})
    foreign_model = GenModel.objects.create(project=ProjectFactory(), name="theirs")
    before = Checkpoint.objects.count()
    response = client.post(url, {"form": "checkpoint", "checkpoint-model": foreign_model.pk,
                                 "checkpoint-name": "", "checkpoint-training_step": "many",
                                 "checkpoint-generator": "no-such-plugin",
                                 "checkpoint-parameters": "{not json"})
    assert response.status_code == 400
    assert "valid choice" in _errors_of(response, "id_checkpoint-model")
    assert "required" in _errors_of(response, "id_checkpoint-name")
    assert "whole number" in _errors_of(response, "id_checkpoint-training_step")
    assert "valid choice" in _errors_of(response, "id_checkpoint-generator")
    assert "JSON" in _errors_of(response, "id_checkpoint-parameters")
    response = client.post(url, {"form": "checkpoint",
                                 "checkpoint-model": world.checkpoint.model_id,
                                 "checkpoint-name": "step-minus-5",
                                 "checkpoint-training_step": "-5",
                                 "checkpoint-generator": "shapes"})
    assert response.status_code == 400
    assert "Training step -5 is negative" in _errors_of(response,
                                                        "id_checkpoint-training_step")
    # The API's serializer refuses a name already used by the model's checkpoints, here too.
    response = client.post(url, {"form": "checkpoint",
                                 "checkpoint-model": world.checkpoint.model_id,
                                 "checkpoint-name": world.checkpoint.name,
                                 "checkpoint-generator": "shapes"})
    assert response.status_code == 400
    assert "This model already has a checkpoint with this name." in _errors_of(
        response, "id_checkpoint-name")
    response = client.post(url, {"form": "model", "model-name": world.checkpoint.model.name})
    assert response.status_code == 400
    assert "This project already has a model with this name." in _errors_of(
        response, "id_model-name")
    response = client.post(url, {"form": "model", "model-name": "x" * 201})
    assert "200 characters" in _errors_of(response, "id_model-name")
    assert Checkpoint.objects.count() == before
    assert not GenModel.objects.filter(project=world.project, name__startswith="xxx").exists()


# ------------------------------------------------------------------------------ prompt sets


def _upload(name: str, data: bytes, content_type: str = "application/octet-stream"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


def test_a_prompt_file_is_imported_whole(world):
    url = reverse("workspace-prompts", kwargs={"project_id": world.project.pk})
    data = b"text,category\na blue square,colour\ntwo red circles,counting\n"
    response = logged_in(world.scientist).post(url, {"name": "colours",
                                                     "file": _upload("p.csv", data)})
    assert response.status_code == 302
    prompt_set = PromptSet.objects.get(project=world.project, name="colours")
    assert list(prompt_set.prompts.order_by("position").values_list("text", "category")) == [
        ("a blue square", "colour"), ("two red circles", "counting")]


def test_every_bad_line_of_a_prompt_file_is_listed_next_to_it_and_nothing_is_stored(world):
    url = reverse("workspace-prompts", kwargs={"project_id": world.project.pk})
    data = (b'{"text": "fine"}\n{"text": \n{"category": "no text"}\n{"text": "also fine"}\n'
            b'{"text": "a cat \\ud83d"}\n')
    response = logged_in(world.scientist).post(url, {"name": "broken",
                                                     "file": _upload("p.jsonl", data)})
    assert response.status_code == 400
    errors = _errors_of(response, "id_file")
    assert "line 2" in errors and "line 3" in errors
    assert "line 1" not in errors and "line 4" not in errors
    assert "line 5: Surrogate characters are not allowed: U+D83D." in errors
    assert not PromptSet.objects.filter(name="broken").exists()
    # A name already used: said next to the name, nothing stored.
    response = logged_in(world.scientist).post(url, {"name": "basics",
                                                     "file": _upload("p.txt", b"a cat\n")})
    # Said once (a NameTaken is an InvalidFields: its message, under its field, once).
    assert _errors_of(response, "id_name").count("already has a prompt set named") == 1
    assert "name: " not in response.content.decode()
    assert PromptSet.objects.filter(project=world.project).count() == 1


# ------------------------------------------------------------------------------ runs


def _generated(world, **values) -> dict[str, object]:
    fields = {"name": "gen-2", "checkpoint": world.checkpoint.pk,
              "prompt_set": world.prompt_set.pk, "seeds": "0-2", "parameters": "{}"}
    fields.update(values)
    return {"form": "generated", **{f"generated-{k}": v for k, v in fields.items()}}


def test_a_generated_run_is_created_and_launched(world, django_capture_on_commit_callbacks):
    url = reverse("workspace-runs", kwargs={"project_id": world.project.pk})
    with django_capture_on_commit_callbacks() as callbacks:
        response = logged_in(world.scientist).post(url, _generated(
            world, parameters='{"width": 32, "height": 32}'))
    run = GenerationRun.objects.get(name="gen-2")
    assert response.status_code == 302
    assert response["Location"] == reverse("workspace-run", kwargs={"run_id": run.pk})
    assert (run.source, run.seeds, run.status, run.items_total, run.parameters) == (
        RunSource.GENERATED, [0, 1, 2], RunStatus.QUEUED, 6, {"width": 32, "height": 32})
    assert len(callbacks) >= 1  # the batches are sent once the transaction commits


def test_metrics_asked_for_with_a_launch_wait_for_the_run_and_show_on_its_page(
        world, django_capture_on_commit_callbacks):
    url = reverse("workspace-runs", kwargs={"project_id": world.project.pk})
    client = logged_in(world.scientist)
    form = client.get(url).content.decode()
    assert 'name="generated-metrics" value="clip_score"' in form
    assert "Compute when it finishes" in form
    with django_capture_on_commit_callbacks():
        response = client.post(url, _generated(world, metrics=["clip_score",
                                                                "lpips_diversity"]))
    run = GenerationRun.objects.get(name="gen-2")
    job = MetricJob.objects.get(run=run)
    assert (job.status, job.metrics, job.created_by, job.shards_total) == (
        JobStatus.WAITING, ["clip_score", "lpips_diversity"], world.scientist, 0)
    page = client.get(response["Location"]).content.decode()  # the run's page
    assert (f"Metric job #{job.pk} (clip_score, lpips_diversity) waits for the run to "
            "finish.") in page
    jobs = page[page.index('id="metric-jobs-table"'):page.index("</table>")]
    assert reverse("workspace-metric-job", kwargs={"job_id": job.pk}) in jobs
    assert "Waiting for its run" in jobs and "data-progress-url" in jobs  # it updates itself
    # The run's page offers its metrics with the run already chosen.
    link = reverse("workspace-metrics", kwargs={"project_id": world.project.pk})
    assert f'href="{link}?run={run.pk}"' in page
    metrics_form = client.get(f"{link}?run={run.pk}").content.decode()
    assert f'<option value="{run.pk}" selected>' in metrics_form


def test_metrics_refused_with_a_launch_leave_neither_the_run_nor_a_job(world):
    url = reverse("workspace-runs", kwargs={"project_id": world.project.pk})
    client = logged_in(world.scientist)
    jobs = MetricJob.objects.count()
    response = client.post(url, _generated(world, metrics=["fid"]))
    assert response.status_code == 400
    assert "choose a reference set" in _errors_of(response, "id_generated-reference_set")
    foreign = ReferenceSet.objects.create(project=ProjectFactory(), name="elsewhere")
    response = client.post(url, _generated(world, metrics=["fid"], reference_set=foreign.pk))
    assert "valid choice" in _errors_of(response, "id_generated-reference_set")
    response = client.post(url, _generated(world, metrics=["no-such-metric"]))
    assert "valid choice" in _errors_of(response, "id_generated-metrics")
    assert not GenerationRun.objects.filter(name="gen-2").exists()
    assert MetricJob.objects.count() == jobs


@pytest.mark.django_db(transaction=True)  # the batches are sent when the form's write commits
def test_a_run_saved_while_the_queue_is_down_opens_on_its_page_saying_so(world, broker):
    """A broker that does not take the batches is no refusal: the run is saved (said as a
    refusal, a second submit stored it twice), and its page says it could not be queued."""
    from tests.ports import free_port

    broker(f"redis://127.0.0.1:{free_port()}/0")
    url = reverse("workspace-runs", kwargs={"project_id": world.project.pk})
    response = logged_in(world.scientist).post(url, _generated(world))
    run = GenerationRun.objects.get(name="gen-2")
    assert response.status_code == 302
    assert response["Location"] == reverse("workspace-run", kwargs={"run_id": run.pk})
    assert run.status == RunStatus.FAILED and "could not be queued" in run.error


def test_run_errors_are_next_to_their_fields_and_no_run_is_left(world):
    url = reverse("workspace-runs", kwargs={"project_id": world.project.pk})
    client = logged_in(world.scientist)
    before = GenerationRun.objects.count()
    response = client.post(url, _generated(world, seeds="0-2,x"))
    assert "not a seed or a range" in _errors_of(response, "id_generated-seeds")
    # The bad part is named once: not "'abc': 'abc' is not a seed".
    response = client.post(url, _generated(world, seeds="abc"))
    assert html.unescape(_errors_of(response, "id_generated-seeds")).count("'abc'") == 1
    response = client.post(url, _generated(world, seeds="1,1"))
    assert "distinct" in _errors_of(response, "id_generated-seeds")
    response = client.post(url, _generated(world, seeds="-3-1"))
    assert "out of range: -3, -2, -1" in _errors_of(response, "id_generated-seeds")
    # The generator refuses the parameters when the run is launched: the run is not kept.
    response = client.post(url, _generated(world, parameters='{"width": 5}'))
    assert response.status_code == 400
    assert "width" in _errors_of(response, "id_generated-parameters")
    response = client.post(url, _generated(world, name="gen-1"))
    assert "gen-1" in _errors_of(response, "id_generated-name")
    other_checkpoint = CheckpointFactory(generator="shapes")
    response = client.post(url, _generated(world, checkpoint=other_checkpoint.pk))
    assert "valid choice" in _errors_of(response, "id_generated-checkpoint")
    assert GenerationRun.objects.count() == before


def test_a_zip_is_imported_as_a_run_or_refused_with_every_bad_file_listed(world):
    url = reverse("workspace-runs", kwargs={"project_id": world.project.pk})
    client = logged_in(world.scientist)
    pngs = distinct_pngs(2)
    good = io.BytesIO()
    make_zip(good, {"a.png": pngs[0], "b.png": pngs[1],
                    "manifest.csv": manifest_csv([("a.png", "a red circle 0", 0),
                                                  ("b.png", "a red circle 1", 0)])})
    unknown_prompt, bad_image = io.BytesIO(), io.BytesIO()
    make_zip(unknown_prompt, {"a.png": pngs[0], "b.png": pngs[1], "manifest.csv": manifest_csv(
        [("a.png", "a red circle 0", 0), ("b.png", "no such prompt", 0)])})
    make_zip(bad_image, {"a.png": pngs[0], "b.png": b"not an image", "manifest.csv":
                         manifest_csv([("a.png", "a red circle 0", 0),
                                       ("b.png", "a red circle 1", 0)])})
    fields = {"form": "imported", "imported-name": "imported-1",
              "imported-checkpoint": world.checkpoint.pk,
              "imported-prompt_set": world.prompt_set.pk}
    for archive, problem in ((unknown_prompt, "manifest line 3: unknown prompt"),
                             (bad_image, "b.png")):
        response = client.post(url, {**fields, "imported-archive": _upload(
            "run.zip", archive.getvalue())})
        assert response.status_code == 400
        assert problem in _errors_of(response, "id_imported-archive").replace("&#x27;", "'")
        assert not GenerationRun.objects.filter(name="imported-1").exists()
    response = client.post(url, {**fields, "imported-archive": _upload("run.zip",
                                                                       good.getvalue())})
    assert response.status_code == 302
    run = GenerationRun.objects.get(name="imported-1")
    assert (run.source, run.images.count(), run.status) == (RunSource.IMPORTED, 2,
                                                             RunStatus.COMPLETED)


def _notice(response) -> str:
    """The text of what the page says of the import that led to it (empty: nothing)."""
    page = html.unescape(response.content.decode())
    if 'id="import-notice"' not in page:
        return ""
    return page.split('id="import-notice"', 1)[1].split("</div>", 1)[0]


def test_an_imported_runs_page_names_the_files_the_import_skipped(world):
    url = reverse("workspace-runs", kwargs={"project_id": world.project.pk})
    client = logged_in(world.scientist)
    archive = io.BytesIO()
    make_zip(archive, {
        **{f"clips/{i}.mp4": video_bytes(frames=6, seed=i) for i in range(2)},
        "README.txt": b"two clips", "clips/.DS_Store": b"\x00\x00\x00\x01Bud1",
        "__MACOSX/clips/._0.mp4": b"\x00\x05\x16\x07",
        "manifest.csv": manifest_csv([("clips/0.mp4", "a red circle 0", 0),
                                      ("clips/1.mp4", "a red circle 1", 0)])})
    response = client.post(url, {
        "form": "imported", "imported-name": "clips", "imported-checkpoint": world.checkpoint.pk,
        "imported-prompt_set": world.prompt_set.pk,
        "imported-archive": _upload("run.zip", archive.getvalue())})
    assert response.status_code == 302
    run = GenerationRun.objects.get(name="clips")
    # Said each time the page it redirects to is loaded: static/js/workspace/upload.js follows
    # the redirect, then the browser opens the page the request ended on.
    for _ in range(2):
        notice = _notice(client.get(response.url))
        assert ("Run 'clips': 2 videos imported, 2 new to this project, 0 already in this "
                "project.") in notice
        assert ("3 files skipped (not in the manifest): README.txt, __MACOSX/clips/._0.mp4, "
                "clips/.DS_Store") in notice
    # The run's page opened on its own, or by another user, says nothing of an import.
    assert _notice(client.get(reverse("workspace-run", kwargs={"run_id": run.pk}))) == ""
    assert _notice(logged_in(world.owner).get(response.url)) == ""


# ------------------------------------------------------------------------------ references


def test_a_reference_set_is_imported_or_refused_leaving_no_empty_set(world):
    url = reverse("workspace-references", kwargs={"project_id": world.project.pk})
    client = logged_in(world.scientist)
    bad = io.BytesIO()
    make_zip(bad, {"real/1.png": distinct_pngs(1)[0], "real/2.jpg": b"truncated"})
    response = client.post(url, {"name": "coco", "archive": _upload("r.zip", bad.getvalue())})
    assert response.status_code == 400
    assert "2.jpg" in _errors_of(response, "id_archive")
    assert not ReferenceSet.objects.filter(name="coco").exists()
    good = io.BytesIO()
    make_zip(good, {f"real/{i}.png": data for i, data in enumerate(distinct_pngs(3))})
    response = client.post(url, {"name": "coco", "archive": _upload("r.zip", good.getvalue())})
    assert response.status_code == 302
    assert ReferenceSet.objects.get(name="coco").images.count() == 3


def test_a_reference_set_import_names_the_files_it_skipped(world):
    url = reverse("workspace-references", kwargs={"project_id": world.project.pk})
    client = logged_in(world.scientist)
    archive = io.BytesIO()
    make_zip(archive, {"real/0.png": distinct_pngs(1)[0], "real/LICENSE": b"CC-BY",
                       "README.txt": b"from COCO"})
    response = client.post(url, {"name": "coco", "archive": _upload("r.zip",
                                                                    archive.getvalue())})
    assert response.status_code == 302
    for _ in range(2):  # the upload script loads the page twice (above)
        notice = _notice(client.get(response.url))
        assert "Reference set 'coco': 1 image added (1 new to this project)." in notice
        assert "2 files skipped (not images or videos): README.txt, real/LICENSE" in notice


@pytest.mark.parametrize("memory_limit", [2_621_440, 0], ids=["in memory", "on disk"])
def test_an_upload_that_is_not_a_zip_is_named_as_the_user_named_it(world, settings,
                                                                   memory_limit):
    # Django keeps a small upload in memory and writes a larger one to a temporary file:
    # either way the message names the user's file, not a server temporary file.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = memory_limit
    url = reverse("workspace-references", kwargs={"project_id": world.project.pk})
    response = logged_in(world.scientist).post(url, {
        "name": "coco", "archive": _upload("holiday photos.zip", b"not a zip")})
    assert response.status_code == 400
    errors = _errors_of(response, "id_archive")
    assert "holiday photos.zip is neither a folder nor a valid zip file" in errors
    assert "tmp" not in errors
    assert not ReferenceSet.objects.filter(name="coco").exists()


def test_a_video_reference_set_is_listed_with_its_kind_and_video_count(world):
    url = reverse("workspace-references", kwargs={"project_id": world.project.pk})
    client = logged_in(world.scientist)
    archive = io.BytesIO()
    make_zip(archive, {f"real/{i}.mp4": video_bytes(seed=i) for i in range(2)})
    response = client.post(url, {"name": "clips", "archive": _upload("v.zip",
                                                                     archive.getvalue())})
    assert response.status_code == 302
    clips = ReferenceSet.objects.get(name="clips")
    assert (clips.media_kind, clips.videos.count(), clips.images.count()) == ("video", 2, 0)
    row = _row_of(client.get(url), "clips")
    assert "<td>Video</td>" in row and '<td class="num">2</td>' in row


# ------------------------------------------------------------------------------ metric jobs


def test_metric_job_errors_are_next_to_their_fields_and_a_good_job_opens_its_progress(
        world, django_capture_on_commit_callbacks):
    url = reverse("workspace-metrics", kwargs={"project_id": world.project.pk})
    client = logged_in(world.scientist)
    before = MetricJob.objects.count()
    # The options box starts empty, showing its placeholder (Django wrote "null" into it).
    page = client.get(url).content.decode()
    box = page[page.index('name="options"'):]
    assert box[box.index(">") + 1:box.index("</textarea>")].strip() == ""
    GenerationRun.objects.filter(pk=world.run.pk).update(status=RunStatus.PARTIAL)
    response = client.post(url, {"run": world.run.pk, "metrics": ["fid"]})
    assert "reference set" in _errors_of(response, "id_reference_set")
    empty = GenerationRunFactory(checkpoint=world.checkpoint, prompt_set=world.prompt_set)
    response = client.post(url, {"run": empty.pk, "metrics": ["clip_score"]})
    assert "has no images" in _errors_of(response, "id_run")
    response = client.post(url, {"run": world.run.pk})
    assert "required" in _errors_of(response, "id_metrics")
    assert MetricJob.objects.count() == before
    with django_capture_on_commit_callbacks():
        response = client.post(url, {"run": world.run.pk, "metrics": ["lpips_diversity"]})
    job = MetricJob.objects.exclude(pk=world.job.pk).get()
    assert response["Location"] == reverse("workspace-metric-job", kwargs={"job_id": job.pk})
    assert job.metrics == ["lpips_diversity"] and job.shards_total >= 1


def test_a_metric_job_over_a_run_still_generating_waits_for_it_and_its_page_says_so(
        world, django_capture_on_commit_callbacks):
    url = reverse("workspace-metrics", kwargs={"project_id": world.project.pk})
    client = logged_in(world.scientist)
    assert world.run.status == RunStatus.RUNNING
    response = client.post(url, {"run": world.run.pk, "metrics": ["clip_score"]})
    job = MetricJob.objects.exclude(pk=world.job.pk).get()
    assert response["Location"] == reverse("workspace-metric-job", kwargs={"job_id": job.pk})
    assert job.status == JobStatus.WAITING and job.shards_total == 0
    page = client.get(response["Location"]).content.decode()
    assert "Waiting for its run" in page
    assert 'id="waiting"' in page and "starts when the run has finished" in page
    assert 'id="resume"' not in page  # nothing to resume: nothing was queued
    # The run closed, but the start of its waiting jobs was lost: the page offers Resume,
    # which starts the job.
    GenerationRun.objects.filter(pk=world.run.pk).update(status=RunStatus.COMPLETED)
    page = client.get(response["Location"]).content.decode()
    assert 'id="waiting"' not in page and 'id="resume"' in page
    resume = reverse("workspace-metric-job-resume", kwargs={"job_id": job.pk})
    with django_capture_on_commit_callbacks():
        assert client.post(resume).status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.shards_total >= 1


def test_metric_job_options_from_the_page_go_through_the_api_checks(
        world, django_capture_on_commit_callbacks):
    # What a failed FID tells the scientist to set (a small reference set's rank-deficient
    # FID, another feature layer) can be set in the browser.
    url = reverse("workspace-metrics", kwargs={"project_id": world.project.pk})
    client = logged_in(world.scientist)
    GenerationRun.objects.filter(pk=world.run.pk).update(status=RunStatus.PARTIAL)  # finished
    before = MetricJob.objects.count()
    for options, error in [('{"fid_feature": 100}', "fid_feature must be one of"),
                           ('{"nope": 1}', "unknown option &#x27;nope&#x27;"),
                           ("[1, 2]", "Give a JSON object"),
                           ("{not json", "Enter a valid JSON")]:
        response = client.post(url, {"run": world.run.pk, "metrics": ["lpips_diversity"],
                                     "options": options})
        assert error in _errors_of(response, "id_options"), options
        assert options in response.content.decode().replace("&quot;", '"')  # kept as typed
    assert MetricJob.objects.count() == before
    with django_capture_on_commit_callbacks():
        client.post(url, {"run": world.run.pk, "metrics": ["lpips_diversity"],
                          "options": '{"fid_feature": 768, "shard_size": 3}'})
    job = MetricJob.objects.exclude(pk=world.job.pk).get()
    assert job.options["fid_feature"] == "768" and job.options["shard_size"] == 3


# ------------------------------------------------------------------------------ progress


def test_run_progress_says_images_done_of_total_and_each_failure_with_its_reason(world):
    client = logged_in(world.scientist)
    state = client.get(reverse("workspace-run-progress", kwargs={"run_id": world.run.pk})).json()
    assert (state["done"], state["total"], state["failed"], state["finished"]) == (1, 2, 1, False)
    assert state["percent"] == 50 and state["images_per_s"] > 0 and state["eta_s"] > 0
    assert state["failures"] == [{"what": 'prompt 2 “a red circle 1”, seed 0 (3 attempts)',
                                  "reason": "CUDA out of memory"}]
    page = client.get(reverse("workspace-run", kwargs={"run_id": world.run.pk})).content.decode()
    assert "CUDA out of memory" in page and 'data-finished="0"' in page
    GenerationRun.objects.filter(pk=world.run.pk).update(status=RunStatus.PARTIAL,
                                                         finished_at=timezone.now())
    state = client.get(reverse("workspace-run-progress", kwargs={"run_id": world.run.pk})).json()
    assert state["finished"] and state["status_label"] == "completed with failures"
    assert state["eta_s"] == 0


def test_a_video_runs_pages_count_videos_and_an_image_runs_count_images(world):
    client = logged_in(world.scientist)
    video_run = GenerationRunFactory(checkpoint=world.checkpoint, prompt_set=world.prompt_set,
                                     name="clips", source=RunSource.GENERATED, seeds=[0],
                                     media_kind=MediaKind.VIDEO, status=RunStatus.FAILED,
                                     items_total=2, items_done=1)
    listing = client.get(reverse("workspace-runs", kwargs={"project_id": world.project.pk}))
    rows = listing.content.decode().split("<tr>")
    [clips] = [row for row in rows if ">clips</bdi></a>" in row]
    [images] = [row for row in rows if ">gen-1</bdi></a>" in row]
    assert '1 / 2 <span class="muted">videos</span>' in clips
    assert '1 / 2 <span class="muted">images</span>' in images
    page = client.get(reverse("workspace-run", kwargs={"run_id": video_run.pk})).content.decode()
    assert "<dt>Videos done</dt>" in page and "<dt>Videos/s</dt>" in page
    assert "only missing videos" in page and "Images" not in page
    page = client.get(reverse("workspace-run", kwargs={"run_id": world.run.pk})).content.decode()
    assert "<dt>Images done</dt>" in page and "<dt>Images/s</dt>" in page


def test_a_runs_page_says_its_image_count_once_and_a_metric_job_both_of_its_counts(world):
    # "Images done 1 / 2" beside "Images 1 / 2" said one figure twice on a run's page.
    client = logged_in(world.scientist)
    page = client.get(reverse("workspace-run", kwargs={"run_id": world.run.pk})).content.decode()
    figures = page.split('class="progress-figures">', 1)[1].split("</dl>", 1)[0]
    assert figures.count(" / ") == 1
    assert '<dt>Images done</dt><dd><span id="progress-done">1</span> / ' \
           '<span id="progress-total">2</span>' in figures
    assert 'id="progress-images-done"' not in page and "<dt>Images</dt>" not in page
    job = client.get(reverse("workspace-metric-job", kwargs={"job_id": world.job.pk}))
    figures = job.content.decode().split('class="progress-figures">', 1)[1].split("</dl>")[0]
    assert "<dt>Shards done</dt>" in figures and 'id="progress-images-done"' in figures


def test_a_runs_seeds_are_shown_as_ranges(world):
    GenerationRun.objects.filter(pk=world.run.pk).update(seeds=[*range(100, 200), 7, 9])
    page = logged_in(world.scientist).get(
        reverse("workspace-run", kwargs={"run_id": world.run.pk})).content.decode()
    assert '<span id="run-seeds">seeds 100\N{EN DASH}199, 7, 9</span>' in page
    # Never the seeds one by one (ids and tokens elsewhere in the page may hold "101").
    assert "100, 101" not in page and "101, 102" not in page


def test_a_video_runs_metric_job_counts_videos(world):
    clips = GenerationRunFactory(checkpoint=world.checkpoint, prompt_set=world.prompt_set,
                                 name="clips", media_kind=MediaKind.VIDEO,
                                 status=RunStatus.COMPLETED)
    job = MetricJob.objects.create(project=world.project, run=clips, metrics=["fvd"],
                                   shards_total=1, status=JobStatus.RUNNING,
                                   started_at=timezone.now())
    MetricShard.objects.create(job=job, index=0, kind=ShardKind.RUN, item_ids=[1, 2],
                               status=ShardStatus.RUNNING, error="worker lost; retrying")
    client = logged_in(world.scientist)
    page = client.get(reverse("workspace-metric-job", kwargs={"job_id": job.pk})).content
    page = page.decode()
    assert "<dt>Videos</dt>" in page and "<dt>Videos/s</dt>" in page
    assert '<th class="num">Videos</th>' in page and "Images" not in page
    state = client.get(reverse("workspace-metric-job-progress", kwargs={"job_id": job.pk}))
    assert state.json()["failures"][0]["what"] == "shard 1 (run videos)"
    # An image run's job still counts images.
    image_job = client.get(reverse("workspace-metric-job", kwargs={"job_id": world.job.pk}))
    assert "<dt>Images/s</dt>" in image_job.content.decode()


def test_the_metric_form_says_what_each_metric_measures(world):
    page = logged_in(world.scientist).get(
        reverse("workspace-metrics", kwargs={"project_id": world.project.pk})).content.decode()
    assert set(METRIC_LABELS) == set(JOB_METRICS)
    for metric in JOB_METRICS:
        assert f'value="{metric}"' in page
        assert html.escape(METRIC_LABELS[metric]) in page


def test_metric_job_progress_counts_shards_images_rate_and_failure_reasons(world):
    client = logged_in(world.scientist)
    url = reverse("workspace-metric-job-progress", kwargs={"job_id": world.job.pk})
    state = client.get(url).json()
    assert (state["done"], state["total"], state["images_done"], state["images_total"]) == (
        1, 2, 1, 2)
    assert 0 < state["images_per_s"] < 1 and state["eta_s"] > 0
    assert state["failures"] == [{"what": "shard 2 (run images)",
                                  "reason": "worker lost; retrying"}]
    MetricJob.objects.filter(pk=world.job.pk).update(
        status=JobStatus.PARTIAL, finished_at=timezone.now(),
        metric_errors={"fid": "too few reference images"},
        error="fid: too few reference images",  # as finalize joins them
        results={"clip_score": {"value": 0.31, "std": None, "n_images": 1,
                                "uncalibrated": True}})
    state = client.get(url).json()
    assert state["finished"] and state["results"] == [
        {"metric": "clip_score", "value": 0.31, "std": None, "n_images": 1,
         "uncalibrated": True, "reference_set": None, "backbone_id": "", "computed_as": "",
         "computed_with": ""}]
    page = client.get(reverse("workspace-metric-job", kwargs={"job_id": world.job.pk}))
    assert "0.3100 (uncalibrated)" in page.content.decode()
    assert state["failures"] == [{"what": "fid", "reason": "too few reference images"}]
    assert state["error"] is None  # said once, in the failures
    assert page.content.decode().count("too few reference images") == 1
    assert json.dumps(state)  # plain JSON


def test_each_result_of_a_metric_job_says_how_it_was_computed(world):
    coco = ReferenceSet.objects.create(project=world.project, name="coco")
    fid = {"value": 54.26, "std": None, "n_images": 1, "uncalibrated": False,
           "backbone_id": "inception-v3-fid/64", "calibrated": True,
           "details": {"dim": 64, "resize": "antialias", "n_reference": 10}}
    kid = {"value": 0.02, "std": 0.001, "n_images": 1, "uncalibrated": False,
           "backbone_id": "inception-v3-fid/pool3", "calibrated": True,
           "details": {"subset_size": 1, "subset_size_asked": 1000, "subsets": 100}}
    clip = {"value": 31.0, "std": None, "n_images": 1, "uncalibrated": True,
            "backbone_id": "open_clip:ViT-B-32/random", "calibrated": False}
    MetricJob.objects.filter(pk=world.job.pk).update(
        status=JobStatus.COMPLETED, finished_at=timezone.now(), reference_set=coco,
        metrics=["fid", "kid", "clip_score"],
        results={"fid": fid, "kid": kid, "clip_score": clip})
    client = logged_in(world.scientist)
    state = client.get(reverse("workspace-metric-job-progress",
                               kwargs={"job_id": world.job.pk})).json()
    described = {r["metric"]: (r["reference_set"], r["computed_as"], r["computed_with"])
                 for r in state["results"]}
    assert described == {
        "fid": ("coco", 'dim=64;resize="antialias"', "reference set “coco” · backbone "
                "inception-v3-fid/64 · 64-d features, antialias resize"),
        "kid": ("coco", "subset_size_asked=1000", "reference set “coco” · backbone "
                "inception-v3-fid/pool3 · KID subsets of 1000"),
        "clip_score": (None, "", "backbone open_clip:ViT-B-32/random")}
    page = html.unescape(client.get(reverse("workspace-metric-job", kwargs={
        "job_id": world.job.pk})).content.decode())
    for result in state["results"]:
        row = page.split(f"<tr><th>{result['metric']}</th>", 1)[1].split("</tr>", 1)[0]
        assert f'<td class="computed-with">{result["computed_with"]}</td>' in row
    assert "31.0000 (uncalibrated)" in page


def test_launching_again_queues_the_missing_items_and_an_imported_run_says_why_not(
        world, django_capture_on_commit_callbacks):
    client = logged_in(world.scientist)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("workspace-run-launch", kwargs={"run_id": world.run.pk}))
    assert response["Location"].startswith(
        reverse("workspace-run", kwargs={"run_id": world.run.pk}) + "?notice=")
    world.run.refresh_from_db()
    assert (world.run.status, world.run.items_total) == (RunStatus.QUEUED, 2)
    assert len(callbacks) >= 1
    imported = GenerationRunFactory(checkpoint=world.checkpoint, prompt_set=world.prompt_set)
    response = client.post(reverse("workspace-run-launch", kwargs={"run_id": imported.pk}))
    assert response.status_code == 400
    assert "is imported, not generated" in response.content.decode()


def test_after_a_relaunch_images_per_second_count_only_the_images_made_since(
        world, settings):
    # Six items, one per batch. The first launch made three, the last one's count lost with its
    # worker; an hour later the run is launched again and makes one more in 10 s: 0.1 images/s,
    # and the two left take 20 s (not 4 images in 10 s, nor 4 in an hour and 10 s).
    from evalhub.generation.services import generation_mark_failed, generation_run_batch

    settings.EVALHUB_GENERATION_BATCH_ITEMS = 1
    run = GenerationRunFactory(checkpoint=world.checkpoint, prompt_set=world.prompt_set,
                               name="relaunched", source=RunSource.GENERATED, seeds=[0, 1, 2])
    client = logged_in(world.scientist)
    launch = reverse("workspace-run-launch", kwargs={"run_id": run.pk})
    assert client.post(launch).status_code == 302
    for start in range(3):
        generation_run_batch(run=run, start=start, stop=start + 1)
    GenerationRun.objects.filter(pk=run.pk).update(items_done=2)  # the worker died uncounted
    generation_mark_failed(run=run, error="worker lost")
    an_hour_ago = timezone.now() - timedelta(hours=1)
    GenerationRun.objects.filter(pk=run.pk).update(started_at=an_hour_ago)

    relaunched = timezone.now()
    assert client.post(launch).status_code == 302
    generation_run_batch(run=run, start=3, stop=4)
    run.refresh_from_db()
    assert (run.status, run.items_done, run.items_total) == (RunStatus.RUNNING, 4, 6)
    assert run.started_at >= relaunched  # the relaunch's first batch, not the first launch's
    GenerationRun.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - timedelta(seconds=10))

    state = client.get(reverse("workspace-run-progress", kwargs={"run_id": run.pk})).json()
    assert (state["done"], state["total"]) == (4, 6)
    assert state["images_per_s"] == pytest.approx(0.1, rel=0.05)
    assert state["eta_s"] == pytest.approx(20, rel=0.05)
    page = client.get(reverse("workspace-run", kwargs={"run_id": run.pk})).content.decode()
    assert '<dd id="progress-rate">0.10</dd>' in page


def test_after_a_resume_images_per_second_count_only_the_images_of_the_shards_done_since(
        world, monkeypatch):
    # Four shards of one image. Two were stored before the others' messages were lost; an hour
    # later the job is resumed and a worker stores one more shard in 10 s: 0.1 images/s, and
    # the one left takes 10 s (not 3 images in 10 s, nor 3 in an hour and 10 s).
    from evalhub.evaluation.services import metric_job_create, metric_shard_run
    from tests.evaluation.helpers import FAST_OPTIONS, make_run

    monkeypatch.setenv("EVALHUB_RANDOM_WEIGHTS", "1")  # no weights files here
    run = make_run(prompts=4, seeds=1, checkpoint=world.checkpoint, name="measured")
    job = metric_job_create(run=run, metrics=["clip_score"],
                            options={**FAST_OPTIONS, "shard_size": 1}, enqueue=False)
    shards = list(job.shards.order_by("index").values_list("pk", flat=True))
    for shard_id in shards[:2]:
        metric_shard_run(shard_id=shard_id)
    MetricJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(hours=1))

    client = logged_in(world.scientist)
    resumed = timezone.now()
    assert client.post(reverse("workspace-metric-job-resume",
                               kwargs={"job_id": job.pk})).status_code == 302
    metric_shard_run(shard_id=shards[2])
    job.refresh_from_db()
    assert (job.status, job.shards_done, job.shards_total) == (JobStatus.RUNNING, 3, 4)
    assert job.started_at >= resumed  # the first shard taken since the resume, not the first
    MetricJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=10))

    state = client.get(reverse("workspace-metric-job-progress",
                               kwargs={"job_id": job.pk})).json()
    assert (state["images_done"], state["images_total"]) == (3, 4)
    assert state["images_per_s"] == pytest.approx(0.1, rel=0.05)
    assert state["eta_s"] == pytest.approx(10, rel=0.05)
    page = client.get(reverse("workspace-metric-job", kwargs={"job_id": job.pk})).content.decode()
    assert '<dd id="progress-rate">0.10</dd>' in page


def test_resume_queues_again_the_shards_not_done_and_a_finished_job_says_why_not(
        world, monkeypatch, django_capture_on_commit_callbacks):
    from evalhub.config.celery import app
    from evalhub.evaluation.services import RUN_SHARD_TASK

    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **options:
                        sent.append((name, list(args or []))))
    client = logged_in(world.scientist)
    page_url = reverse("workspace-metric-job", kwargs={"job_id": world.job.pk})
    resume = reverse("workspace-metric-job-resume", kwargs={"job_id": world.job.pk})
    page = client.get(page_url).content.decode()
    form = page.split('<form method="post" action="' + resume + '"', 1)[1].split("</form>")[0]
    assert 'name="csrfmiddlewaretoken"' in form and "safe to press" in form
    assert "each shard is stored once" in form and "Resume" in form
    assert logged_in(world.scientist).get(resume).status_code == 405  # a POST only
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resume)
    assert response.status_code == 302 and response["Location"] == page_url + "?resumed=1"
    running = world.job.shards.get(index=1)
    assert sent == [(RUN_SHARD_TASK, [running.pk])]  # the stored shard 0 is not queued again
    assert "the shards not done yet were queued again" in client.get(
        response["Location"]).content.decode()
    # Finished meanwhile (the page was open): refused with the reason, on the page.
    MetricJob.objects.filter(pk=world.job.pk).update(status=JobStatus.COMPLETED)
    response = client.post(resume)
    assert response.status_code == 409
    page = response.content.decode()
    assert f"Job {world.job.pk} is already completed." in page and 'id="resume-error"' in page
    assert f'action="{resume}"' not in page  # no button for a finished job
    assert f'action="{resume}"' not in client.get(page_url).content.decode()
    assert len(sent) == 1


def _row_of(response, name: str) -> str:
    """The table row (``<tr>...</tr>``) of the page whose first cell is ``name`` (isolated:
    tests/core/test_user_text_direction.py)."""
    page = response.content.decode()
    start = page.index(f"<tr><td><bdi>{name}</bdi></td>")
    return page[start:page.index("</tr>", start)]


def test_launching_again_says_what_was_queued_or_that_nothing_is_left(
        world, django_capture_on_commit_callbacks, sent_tasks):
    # A finished run used to reload with no word: the page says why nothing happened.
    client = logged_in(world.scientist)
    launch = reverse("workspace-run-launch", kwargs={"run_id": world.run.pk})
    with django_capture_on_commit_callbacks():
        response = client.post(launch, follow=True)
    assert response.redirect_chain[0][0].startswith(
        reverse("workspace-run", kwargs={"run_id": world.run.pk}) + "?notice=")
    notice = response.content.decode().split('id="import-notice">', 1)[1].split("</div>")[0]
    assert "Queued 1 image to generate; 1 of 2 is done." in notice

    done = GenerationRunFactory(checkpoint=world.checkpoint, prompt_set=world.prompt_set,
                                name="done", source=RunSource.GENERATED, seeds=[0, 1],
                                status=RunStatus.COMPLETED, items_total=4, items_done=4)
    for prompt in world.prompt_set.prompts.all():
        for seed in (0, 1):
            ImageFactory(run=done, prompt=prompt, seed=seed)
    sent_tasks.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("workspace-run-launch", kwargs={"run_id": done.pk}),
                               follow=True)
    # No batch: what its images still lack (each its preview task) is all the launch queues.
    assert "evalhub.generation.generate_batch" not in {name for name, _ in sent_tasks}
    notice = response.content.decode().split('id="import-notice">', 1)[1].split("</div>")[0]
    assert "Nothing to generate: all 4 images are done." in notice
    done.refresh_from_db()
    assert done.status == RunStatus.COMPLETED


def test_a_refused_upload_marks_its_field_and_has_a_status_region_to_say_so(world):
    # static/js/workspace/upload.js puts this form in place of the sent one, says the refusal
    # in the status region and moves the focus to the first aria-invalid field, whose
    # aria-describedby reads its errors.
    url = reverse("workspace-prompts", kwargs={"project_id": world.project.pk})
    response = logged_in(world.scientist).post(url, {
        "name": "broken", "file": _upload("p.csv", b'text,category\n"unclosed,x\n')})
    assert response.status_code == 400
    form = response.content.decode().split('id="prompt-set-form"', 1)[1].split("</form>")[0]
    [invalid] = [tag for tag in form.split("<")[1:] if 'aria-invalid="true"' in tag]
    assert invalid.startswith("input") and 'id="id_file"' in invalid
    assert 'aria-describedby="id_file_helptext id_file_error"' in invalid
    assert '<ul class="field-errors" id="id_file_error"><li>' in form
    assert '<span class="upload-status" role="status" aria-live="polite"></span>' in form
