"""The scientist's set-up in Chromium, with a real Celery worker: register a model and a
checkpoint, upload prompts (through the upload script and its progress bar), launch a `shapes`
generation and wait on the progress view, which updates itself until the run is done, then
compute a metric on the run and wait on the job's progress view. A zip import refused, then
accepted.

Fails on any console error or Content-Security-Policy violation of the pages. Screenshots of
the progress view are kept under /tmp (workspace-*.png). Lean: 2 prompts x 2 seeds of 48 px.
"""

from __future__ import annotations

import io
import zipfile

import pytest

from evalhub.core.text import isolated
from evalhub.projects.models import Role
from evalhub.runs.models import Checkpoint, GenerationRun, RunStatus
from tests.browser.conftest import login
from tests.factories import (
    CheckpointFactory,
    MembershipFactory,
    ProjectFactory,
    PromptFactory,
    PromptSetFactory,
)

# A real worker sharing the test database, broker and media folder (the suite's one session
# worker, tests/integration/fixtures.py); the media folder is the worker's.
from tests.integration.conftest import _media_in_tmp  # noqa: F401 (fixture)
from tests.runs.helpers import distinct_pngs, manifest_csv

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.django_db(transaction=True)]

PROMPTS = b"a red circle on white\nthree blue squares\n"


def test_a_scientist_sets_up_generates_with_shapes_and_computes_a_metric(context, errors, worker):
    project = ProjectFactory(name="Workspace study")
    scientist = MembershipFactory(project=project, role=Role.SCIENTIST).user
    page = context.new_page()
    models_url = f"/workspace/{project.pk}/models/"
    login(page, scientist.username, models_url)

    # 1. A model, then a checkpoint of it at a training step, drawn by `shapes`.
    page.fill("#id_model-name", "toy-diffusion")
    page.click("#model-form button[type=submit]")
    page.wait_for_selector("#models-table")
    page.select_option("#id_checkpoint-model", label=isolated("toy-diffusion"))
    page.fill("#id_checkpoint-name", "step-1000")
    page.fill("#id_checkpoint-training_step", "1000")
    page.select_option("#id_checkpoint-generator", value="shapes")
    page.click("#checkpoint-form button[type=submit]")
    page.wait_for_selector("#models-table >> text=step-1000")
    assert Checkpoint.objects.get(model__project=project).training_step == 1000

    # 2. Prompts, sent by the upload script (progress bar, then the list once stored).
    page.click("nav.tabs >> text=Prompt sets")
    page.fill("#id_name", "shapes-prompts")
    page.set_input_files("#id_file", files=[{"name": "prompts.txt", "mimeType": "text/plain",
                                             "buffer": PROMPTS}])
    page.click("#prompt-set-form button[type=submit]")
    page.wait_for_selector("#prompt-sets-table >> text=shapes-prompts")
    assert page.inner_text("#prompt-sets-table tbody td.num") == "2"

    # 3. A generated run: checkpoint x prompt set x seeds x parameters, launched at once.
    page.click("nav.tabs >> text=Runs")
    page.fill("#id_generated-name", "shapes-run")
    page.fill("#id_generated-seeds", "0-1")
    page.fill("#id_generated-parameters", '{"width": 48, "height": 48}')
    page.click("#generated-run-form button[type=submit]")
    page.wait_for_url("**/workspace/runs/*/")
    page.evaluate("window.__samePage = true")  # gone if the page were reloaded
    page.screenshot(path="/tmp/workspace-progress-started.png")

    # 4. The progress view updates itself (no reload) until the run's final state.
    page.wait_for_selector('#progress[data-finished="1"]', timeout=120_000)
    page.screenshot(path="/tmp/workspace-progress-done.png")
    assert page.evaluate("window.__samePage") is True
    run = GenerationRun.objects.get(project=project, name="shapes-run")
    assert (run.status, run.items_done, run.items_total) == (RunStatus.COMPLETED, 4, 4)
    assert page.inner_text("#progress-status") == "Completed"
    assert (page.inner_text("#progress-done"), page.inner_text("#progress-total")) == ("4", "4")
    assert page.get_attribute("#progress-bar", "value") == "100"
    assert page.is_visible("#progress-no-failures")
    assert run.images.count() == 4

    # 5. Metrics on the run (LPIPS diversity needs no reference set): the job's own progress
    # view (shards, images/s) reaches its final state and shows the value.
    page.click("text=Compute metrics")
    page.select_option("#id_run", value=str(run.pk))
    page.check("input[name=metrics][value=lpips_diversity]")
    page.click("#metric-job-form button[type=submit]")
    page.wait_for_url("**/workspace/metric-jobs/*/")
    page.wait_for_selector('#progress[data-finished="1"]', timeout=120_000)
    page.screenshot(path="/tmp/workspace-metric-job-done.png")
    assert page.inner_text("#progress-status") == "Completed"
    assert page.inner_text("#progress-done") == page.inner_text("#progress-total")
    assert page.inner_text("#progress-images-done") == "4"
    assert "lpips_diversity" in page.inner_text("#results-body")
    assert page.evaluate("window.__violations") == []
    assert errors == []


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_a_zip_import_shows_its_upload_progress_and_lists_every_refusal(
        context, errors, worker):
    project = ProjectFactory(name="Import study")
    scientist = MembershipFactory(project=project, role=Role.SCIENTIST).user
    checkpoint = CheckpointFactory(model__project=project, name="imported-ckpt")
    prompt_set = PromptSetFactory(project=project, name="two")
    for position, text in enumerate(("a red circle", "a blue square")):
        PromptFactory(prompt_set=prompt_set, position=position, text=text)
    pngs = distinct_pngs(2)
    manifest = manifest_csv([("a.png", "a red circle", 0), ("b.png", "a blue square", 0)])
    page = context.new_page()
    runs_url = f"/workspace/{project.pk}/runs/"
    login(page, scientist.username, runs_url)

    def send(archive: bytes) -> None:
        page.fill("#id_imported-name", "imported-run")
        page.select_option("#id_imported-checkpoint", value=str(checkpoint.pk))
        page.set_input_files("#id_imported-archive", files=[
            {"name": "run.zip", "mimeType": "application/zip", "buffer": archive}])
        page.click("#imported-run-form button[type=submit]")

    # Refused: the form comes back in place with every bad file under the archive field.
    send(_zip({"a.png": pngs[0], "b.png": b"not an image", "manifest.csv": manifest}))
    page.wait_for_selector('#imported-run-form[data-state="refused"]')
    assert page.get_attribute("#imported-run-form", "data-uploaded") == "1"  # sent with a bar
    listed = page.inner_text("#id_imported-archive_error")
    assert "nothing was imported" in listed and "b.png" in listed
    # Said, and the focus on the field to fix (it was on the button the new form replaced).
    assert page.inner_text("#imported-run-form .upload-status") == (
        "The upload was refused: 1 field to fix; nothing was stored.")
    assert page.evaluate("document.activeElement.id") == "id_imported-archive"
    assert page.input_value("#id_imported-name") == "imported-run"  # kept for the next try
    assert not GenerationRun.objects.filter(project=project).exists()

    # Stored: the run's page, its images counted (and what the import said: workspace/notices.py).
    send(_zip({"a.png": pngs[0], "b.png": pngs[1], "manifest.csv": manifest}))
    page.wait_for_url("**/workspace/runs/*/?notice=*")
    assert page.inner_text("#progress-status") == "Completed"
    assert (page.inner_text("#progress-done"), page.inner_text("#progress-total")) == ("2", "2")
    assert GenerationRun.objects.get(project=project).images.count() == 2
    # The refusal's 400 is the one console line a refused upload makes (Chromium logs every
    # non-2xx answer to a script's request); nothing else may appear.
    assert [e for e in errors if "status of 400" not in e] == []
    assert page.evaluate("window.__violations") == []
