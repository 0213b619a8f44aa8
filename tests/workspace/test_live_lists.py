"""The workspace's Runs and Metric jobs lists keep their unfinished rows live: each such row
names its progress JSON (the one the run's or job's own page polls, read by
static/js/workspace/progress.js) and the page loads that script; finished rows name nothing,
and a list with nothing unfinished loads no progress script at all (so it never polls).
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from evalhub.evaluation.models import JobStatus, MetricJob
from evalhub.projects.models import Role
from evalhub.runs.models import RunSource, RunStatus
from tests.factories import GenerationRunFactory, MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db

SCRIPT = "js/workspace/progress.js"


def _scientist_client(project) -> Client:
    client = Client()
    client.force_login(MembershipFactory(project=project, role=Role.SCIENTIST).user)
    return client


def _run(project, name: str, status: str, done: int = 0, total: int = 240):
    return GenerationRunFactory(checkpoint__model__project=project, name=name,
                                source=RunSource.GENERATED, seeds=[0], status=status,
                                items_total=total, items_done=done)


def _row_of(page: str, link: str) -> str:
    """The ``<tr ...>...</tr>`` of the list row holding a link to ``link``."""
    at = page.index(f'href="{link}"')
    start = page.rindex("<tr", 0, at)
    return page[start:page.index("</tr>", at)]


def test_unfinished_runs_poll_their_progress_and_finished_ones_do_not():
    project = ProjectFactory()
    running = _run(project, "running-run", RunStatus.RUNNING, done=0)
    queued = _run(project, "queued-run", RunStatus.QUEUED)
    done = _run(project, "done-run", RunStatus.COMPLETED, done=240)
    page = _scientist_client(project).get(
        reverse("workspace-runs", kwargs={"project_id": project.pk})).content.decode()

    for run in (running, queued):
        row = _row_of(page, reverse("workspace-run", kwargs={"run_id": run.pk}))
        url = reverse("workspace-run-progress", kwargs={"run_id": run.pk})
        # The count cell names the JSON; the script redraws it and the status cell.
        assert (f'<td class="num" data-progress-url="{url}" data-finished="0">0 / 240 '
                '<span class="muted">images</span>') in row
        assert "<td data-progress-status" in row
    finished = _row_of(page, reverse("workspace-run", kwargs={"run_id": done.pk}))
    assert "data-progress-url" not in finished and "Completed" in finished
    assert SCRIPT in page


def test_a_run_nobody_launched_does_not_poll():
    """A pending run changes only when someone launches it (that page reloads): nothing to ask."""
    project = ProjectFactory()
    pending = _run(project, "pending-run", RunStatus.PENDING)
    page = _scientist_client(project).get(
        reverse("workspace-runs", kwargs={"project_id": project.pk})).content.decode()

    row = _row_of(page, reverse("workspace-run", kwargs={"run_id": pending.pk}))
    assert "data-progress-url" not in row and "Pending" in row
    assert SCRIPT not in page


def test_unfinished_metric_jobs_poll_their_progress_and_finished_ones_do_not():
    project = ProjectFactory()
    run = _run(project, "measured", RunStatus.COMPLETED, done=240)
    queued = MetricJob.objects.create(project=project, run=run, metrics=["clip_score"],
                                      shards_total=1, status=JobStatus.QUEUED)
    done = MetricJob.objects.create(project=project, run=run, metrics=["clip_score"],
                                    shards_total=1, shards_done=1, status=JobStatus.COMPLETED)
    page = _scientist_client(project).get(
        reverse("workspace-metrics", kwargs={"project_id": project.pk})).content.decode()

    row = _row_of(page, reverse("workspace-metric-job", kwargs={"job_id": queued.pk}))
    url = reverse("workspace-metric-job-progress", kwargs={"job_id": queued.pk})
    assert f'<td class="num" data-progress-url="{url}" data-finished="0">0 / 1</td>' in row
    assert '<td data-progress-status class="status-queued">Queued</td>' in row
    finished = _row_of(page, reverse("workspace-metric-job", kwargs={"job_id": done.pk}))
    assert "data-progress-url" not in finished
    assert SCRIPT in page


@pytest.mark.parametrize("page_name", ["workspace-runs", "workspace-metrics"])
def test_a_list_with_nothing_unfinished_never_polls(page_name):
    project = ProjectFactory()
    run = _run(project, "all-done", RunStatus.PARTIAL, done=239)
    _run(project, "failed", RunStatus.FAILED)
    MetricJob.objects.create(project=project, run=run, metrics=["clip_score"],
                             shards_total=1, shards_done=1, status=JobStatus.COMPLETED)
    MetricJob.objects.create(project=project, run=run, metrics=["clip_score"],
                             shards_total=1, status=JobStatus.FAILED)
    page = _scientist_client(project).get(
        reverse(page_name, kwargs={"project_id": project.pk})).content.decode()

    assert "data-progress-url" not in page
    assert SCRIPT not in page
