"""Issue 16's "done when": a new scientist does the whole job in the browser, from an empty
project, with the real worker (tests/integration/fixtures.py) doing the jobs:

1. register a model and two checkpoints;
2. upload prompts;
3. launch a `shapes` generation and wait on the progress view;
4. import a zip (the second checkpoint's run);
5. run metrics;
6. create a campaign that the annotator rates (built by the worker);
7. rate it in a second browser context as an annotator;
8. read the leaderboard;
9. browse the gallery;
10. export.

Nothing is created behind the browser's back but the project and its two members. Fails on
any console error or Content-Security-Policy violation of any page of either context.
Screenshots of every step are kept as artifacts under ``$EVALHUB_ARTIFACTS`` (default
/tmp/evalhub-walkthrough). Lean: 2 prompts x 2 seeds of 48 px per run.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from evalhub.campaigns.models import Campaign, CampaignStatus, JudgeKind, Judgment
from evalhub.core.text import isolated
from evalhub.projects.models import Role
from evalhub.runs.models import Checkpoint, GenerationRun, RunStatus
from tests.browser.conftest import LAPTOP, login
from tests.browser.pages import (
    GALLERY_SHOWN,
    WATCH_VIOLATIONS,
    dismiss_instructions,
    shown_lease,
)
from tests.factories import MembershipFactory, ProjectFactory

# The suite's one session worker shares the test database, broker and media folder.
from tests.integration.conftest import _media_in_tmp  # noqa: F401 (fixture)
from tests.runs.helpers import distinct_pngs, manifest_csv

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.django_db(transaction=True)]

PROMPTS = ("a red circle on white", "three blue squares")
SEEDS = (0, 1)
WORKER_WAIT_MS = 120_000
ARTIFACTS = Path(os.environ.get("EVALHUB_ARTIFACTS", "/tmp/evalhub-walkthrough"))
DONE = "() => document.querySelector('#rate-app').dataset.done === '1'"


def _checkpoint(step: int) -> str:
    """How the run forms list a checkpoint: model / name (step) · generator, each name
    isolated (docs/accessibility.md)."""
    return f"{isolated('toy-diffusion')} / {isolated(f'step-{step}')} (step {step}) · shapes"


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _shot(page, step: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{step}.png"), full_page=True)


def _annotator_context(browser, live_server, found: list[str]):
    """A second browser (its own cookies and storage) whose console errors land in ``found``."""
    context = browser.new_context(viewport=LAPTOP, base_url=live_server.url)
    context.set_default_timeout(15_000)
    context.add_init_script(WATCH_VIOLATIONS)

    def watch(page) -> None:
        page.on("console", lambda m: found.append(m.text) if m.type == "error" and not
                m.location.get("url", "").endswith("/favicon.ico") else None)
        page.on("pageerror", lambda error: found.append(str(error)))

    context.on("page", watch)
    return context


def test_a_new_scientist_runs_a_whole_evaluation_in_the_browser(
        browser, live_server, context, errors, worker):
    project = ProjectFactory(name="First study")
    scientist = MembershipFactory(project=project, role=Role.SCIENTIST).user
    annotator = MembershipFactory(project=project, role=Role.ANNOTATOR).user
    page = context.new_page()
    login(page, scientist.username, "/workspace/")
    page.click(f"text={project.name}")
    page.wait_for_url(f"**/workspace/{project.pk}/models/")

    # 1. A model and two checkpoints along training, drawn by `shapes`.
    page.fill("#id_model-name", "toy-diffusion")
    page.click("#model-form button[type=submit]")
    page.wait_for_selector("#models-table")
    for step in (1000, 2000):
        page.select_option("#id_checkpoint-model", label=isolated("toy-diffusion"))
        page.fill("#id_checkpoint-name", f"step-{step}")
        page.fill("#id_checkpoint-training_step", str(step))
        page.select_option("#id_checkpoint-generator", value="shapes")
        page.click("#checkpoint-form button[type=submit]")
        page.wait_for_selector(f"#models-table >> text=step-{step}")
    assert sorted(Checkpoint.objects.filter(model__project=project)
                  .values_list("training_step", flat=True)) == [1000, 2000]
    _shot(page, "01-models")

    # 2. Prompts.
    page.click("nav.tabs >> text=Prompt sets")
    page.fill("#id_name", "shapes-prompts")
    page.set_input_files("#id_file", files=[{"name": "prompts.txt", "mimeType": "text/plain",
                                             "buffer": "\n".join(PROMPTS).encode()}])
    page.click("#prompt-set-form button[type=submit]")
    page.wait_for_selector("#prompt-sets-table >> text=shapes-prompts")
    assert page.inner_text("#prompt-sets-table tbody td.num") == str(len(PROMPTS))
    _shot(page, "02-prompts")

    # 3. A `shapes` generation from the first checkpoint, watched on its progress view.
    page.click("nav.tabs >> text=Runs")
    page.fill("#id_generated-name", "baseline")
    page.select_option("#id_generated-checkpoint", label=_checkpoint(1000))
    page.fill("#id_generated-seeds", "0-1")
    page.fill("#id_generated-parameters", '{"width": 48, "height": 48}')
    page.click("#generated-run-form button[type=submit]")
    page.wait_for_url("**/workspace/runs/*/")
    page.wait_for_selector('#progress[data-finished="1"]', timeout=WORKER_WAIT_MS)
    assert page.inner_text("#progress-status") == "Completed"
    assert (page.inner_text("#progress-done"), page.inner_text("#progress-total")) == ("4", "4")
    baseline = GenerationRun.objects.get(project=project, name="baseline")
    assert baseline.status == RunStatus.COMPLETED and baseline.images.count() == 4
    _shot(page, "03-generation-done")

    # 4. The second checkpoint's images, imported from a zip with its manifest.
    page.click("nav.tabs >> text=Runs")
    pngs = distinct_pngs(len(PROMPTS) * len(SEEDS))
    files = {f"{p}-{s}.png": pngs[p * len(SEEDS) + s]
             for p in range(len(PROMPTS)) for s in SEEDS}
    manifest = manifest_csv([(f"{p}-{s}.png", PROMPTS[p], s)
                             for p in range(len(PROMPTS)) for s in SEEDS])
    page.fill("#id_imported-name", "finetuned")
    page.select_option("#id_imported-checkpoint", label=_checkpoint(2000))
    page.select_option("#id_imported-prompt_set", label=isolated("shapes-prompts"))
    page.set_input_files("#id_imported-archive", files=[{
        "name": "finetuned.zip", "mimeType": "application/zip",
        "buffer": _zip({**files, "manifest.csv": manifest})}])
    page.click("#imported-run-form button[type=submit]")
    page.wait_for_url("**/workspace/runs/*/?notice=*")  # what the import said: notices.py
    assert page.inner_text("#progress-status") == "Completed"
    finetuned = GenerationRun.objects.get(project=project, name="finetuned")
    assert finetuned.images.count() == 4
    _shot(page, "04-import")

    # 5. Metrics on the generated run, watched until its final state.
    page.click("nav.tabs >> text=Metric jobs")
    page.select_option("#id_run", value=str(baseline.pk))
    page.check("input[name=metrics][value=lpips_diversity]")
    page.click("#metric-job-form button[type=submit]")
    page.wait_for_url("**/workspace/metric-jobs/*/")
    page.wait_for_selector('#progress[data-finished="1"]', timeout=WORKER_WAIT_MS)
    assert page.inner_text("#progress-status") == "Completed"
    assert "lpips_diversity" in page.inner_text("#results-body")
    _shot(page, "05-metrics")

    # 6. A campaign over the two runs, built by the worker while the page watches.
    page.goto("/projects/")
    page.click(f"[data-project='{project.slug}'] >> text=Campaigns")
    page.click("#new-campaign")
    page.fill("#id_name", "Baseline vs finetuned")
    for run_name in ("baseline", "finetuned"):
        page.check(f"#campaign-form label:has-text('{run_name}') input")
    page.fill("#id_judgments_per_pair", "1")
    # Only the annotator rates (the scientist, a member too, is not ticked).
    page.check(f"#campaign-form label:has-text('{annotator.username} (annotator)') input")
    page.fill("#id_instructions", "Pick the image that follows the prompt best.")
    page.click("#campaign-form button[type=submit]")
    page.wait_for_url("**/manage/")
    page.wait_for_selector("#campaign-status:text-is('active')", timeout=WORKER_WAIT_MS)
    campaign = Campaign.objects.get(project=project)
    assert campaign.status == CampaignStatus.ACTIVE
    assert list(campaign.annotators.all()) == [annotator]
    assert annotator.username in page.inner_text("#assigned")
    # Pairs are formed per prompt (the build's rule, not this test's): as many as it made.
    pairs = campaign.tasks.filter(is_gold=False).count()
    assert pairs >= len(PROMPTS) and page.inner_text("[data-field=tasks]") == str(pairs)
    _shot(page, "06-campaign")

    # 7. The annotator rates every pair in a browser of their own.
    annotator_errors: list[str] = []
    rater_context = _annotator_context(browser, live_server, annotator_errors)
    try:
        rater = rater_context.new_page()
        login(rater, annotator.username, "/")
        rater.click(f"a[href='/rate/{campaign.pk}/']")
        dismiss_instructions(rater)
        lease = ""
        for _ in range(pairs):
            lease = shown_lease(rater, other_than=lease)
            rater.keyboard.press("1")
        rater.wait_for_function(DONE)
        assert "You have rated everything" in rater.inner_text("#rate-done")
        _shot(rater, "07-rated")
        assert rater.evaluate("window.__violations") == []
    finally:
        rater_context.close()
    assert annotator_errors == []
    votes = Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.HUMAN,
                                    retracted_at__isnull=True)
    assert votes.count() == pairs and set(votes.values_list("annotator", flat=True)) == {
        annotator.pk}

    # 8. The leaderboard: both runs ranked on those votes.
    page.goto("/dashboard/")
    page.click(f"text={campaign.name}")
    page.wait_for_url(f"**/dashboard/campaigns/{campaign.pk}/**")
    ranking = page.locator("table", has_text="Possible ranks")
    assert "baseline" in ranking.inner_text() and "finetuned" in ranking.inner_text()
    assert page.is_visible(".rank-definition")
    _shot(page, "08-leaderboard")

    # 9. The gallery: the two runs side by side, paged with the keyboard.
    page.goto(f"/workspace/{project.pk}/runs/")
    page.click("nav.tabs >> text=Gallery")
    page.select_option("#id_a", value=str(baseline.pk))
    page.select_option("#id_b", value=str(finetuned.pk))
    page.click("#gallery-form button[type=submit]")
    page.wait_for_function(GALLERY_SHOWN, arg=1)
    assert page.inner_text("#gallery-summary").startswith("4 pairs")
    first_prompt = page.text_content("#gallery-prompt")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(GALLERY_SHOWN, arg=2)
    assert {first_prompt, page.text_content("#gallery-prompt")} <= set(PROMPTS)
    _shot(page, "09-gallery")

    # 10. The export: the raw votes, downloaded.
    page.goto(f"/projects/{project.pk}/campaigns/")
    page.click("text=Export")
    page.check("#export-form input[value=raw-csv]")
    with page.expect_download() as download:
        page.click("#export-download")
    frame = pd.read_csv(download.value.path())
    assert len(frame) == pairs
    _shot(page, "10-export")

    assert page.evaluate("window.__violations") == []
    assert errors == []
