"""The workspace's Runs and Metric jobs lists in Chromium: an unfinished row follows its run's
or job's progress (the progress JSON its own page polls) without a reload, and stops asking
once finished; a finished row never asks. Progress is written straight to the database, as a
worker would, so no worker is needed. Names are isolated from the text beside them.
"""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from evalhub.evaluation.models import JobStatus, MetricJob
from evalhub.projects.models import Role
from evalhub.runs.models import GenerationRun, RunSource, RunStatus
from tests.browser.conftest import login
from tests.factories import GenerationRunFactory, MembershipFactory, ProjectFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_unfinished_rows_of_the_runs_and_metric_jobs_lists_update_without_a_reload(
        context, errors):
    project = ProjectFactory(name="Live lists")
    scientist = MembershipFactory(project=project, role=Role.SCIENTIST).user
    run = GenerationRunFactory(checkpoint__model__project=project, name="live-run",
                               source=RunSource.GENERATED, seeds=[0], status=RunStatus.RUNNING,
                               items_total=240, items_done=0)
    done = GenerationRunFactory(checkpoint__model__project=project, name="done-run",
                                checkpoint__model__name="abc\u202edcba",  # an override left open
                                source=RunSource.GENERATED, seeds=[0],
                                status=RunStatus.COMPLETED, items_total=4, items_done=4)
    job = MetricJob.objects.create(project=project, run=done, metrics=["clip_score"],
                                   shards_total=1, status=JobStatus.QUEUED)
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url)
            if "/progress/" in request.url else None)

    # 1. The runs list: the running row follows the run, the completed one is left alone.
    login(page, scientist.username, f"/workspace/{project.pk}/runs/")
    page.evaluate("window.__samePage = true")  # gone if the page were reloaded
    count = page.locator(f'#runs-table td[data-progress-url$="/runs/{run.pk}/progress/"]')
    status = count.locator("xpath=../td[@data-progress-status]")
    expect(count).to_have_text("0 / 240 images")
    # The override reverses only the model's name: " / " and the checkpoint's name stay after
    # it, each name isolated (docs/accessibility.md).
    names = page.eval_on_selector_all(
        f'#runs-table tr:has(a[href$="/runs/{done.pk}/"]) td:nth-child(2) bdi',
        "els => els.map(e => [getComputedStyle(e).unicodeBidi, e.getBoundingClientRect().left])")
    assert [bidi for bidi, _ in names] == ["isolate", "isolate"]
    assert names[0][1] < names[1][1]
    GenerationRun.objects.filter(pk=run.pk).update(items_done=120, started_at=timezone.now())
    expect(count).to_have_text("120 / 240 images")
    expect(status).to_have_text("Running")
    GenerationRun.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED, items_done=240,
                                                   finished_at=timezone.now())
    expect(count).to_have_attribute("data-finished", "1")
    expect(count).to_have_text("240 / 240 images")
    expect(status).to_have_text("Completed")
    expect(status).to_have_class("status-completed")
    assert page.evaluate("window.__samePage") is True
    assert all(f"/runs/{run.pk}/progress/" in url for url in asked)  # never the finished run
    seen = len(asked)
    page.wait_for_timeout(1500)  # more than one poll interval: a finished row asks no more
    assert len(asked) == seen

    # 2. The metric jobs list: the queued job's row follows it to its end.
    page.goto(f"/workspace/{project.pk}/metrics/")
    page.evaluate("window.__samePage = true")
    count = page.locator(
        f'#metric-jobs-table td[data-progress-url$="/metric-jobs/{job.pk}/progress/"]')
    status = count.locator("xpath=../td[@data-progress-status]")
    expect(status).to_have_text("Queued")
    MetricJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED, shards_done=1,
                                               finished_at=timezone.now())
    expect(count).to_have_attribute("data-finished", "1")
    expect(count).to_have_text("1 / 1")
    expect(status).to_have_text("Completed")
    assert page.evaluate("window.__samePage") is True

    assert page.evaluate("window.__violations") == []
    assert errors == []
