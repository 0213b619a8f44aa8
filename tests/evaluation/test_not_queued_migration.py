"""``evaluation 0011`` moves the mark of a metric job not queued from the wording of its
``error`` to the ``not_queued`` column: an unfinished job an earlier release marked (its error
begins "Its shards could not be queued") is marked after the upgrade, so creating the same job
again still queues its shards; nothing else is.

The test database is at the latest migration, where the column exists (``False`` on every row,
as ``AddField`` leaves it); the migration's data step runs with its historical models, as
tests/config/test_upgrade_migrations.py runs ``runs 0006``'s."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from evalhub.evaluation.models import JobStatus, MetricJob
from tests.factories import GenerationRunFactory

pytestmark = pytest.mark.django_db

MIGRATION = ("evaluation", "0011_metricjob_not_queued")
OLD_ERROR = ("Its shards could not be queued (the task queue did not answer): no worker is "
             "computing them. Once the queue is back, resume it (manage.py resume_metric_job 1, "
             "POST /api/v1/metric-jobs/1/resume/ or the Resume button of its page); creating "
             "the same job again queues them too.")


def mark_not_queued() -> None:
    module = importlib.import_module(f"evalhub.{MIGRATION[0]}.migrations.{MIGRATION[1]}")
    apps = MigrationLoader(connection).project_state(MIGRATION).apps
    with connection.schema_editor() as editor:
        module.mark_not_queued(apps, editor)


def test_the_upgrade_marks_the_unfinished_jobs_whose_error_has_the_old_mark():
    run = GenerationRunFactory()

    def job(status: str, error: str) -> MetricJob:
        return MetricJob.objects.create(project_id=run.project_id, run=run,
                                        metrics=["clip_score"], status=status, error=error)

    marked = [job(status, OLD_ERROR)
              for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FINALIZING)]
    finished = job(JobStatus.FAILED, OLD_ERROR)  # a finished job is never queued again
    other_error = job(JobStatus.QUEUED, "worker lost; shards could not be queued")
    no_error = job(JobStatus.QUEUED, "")

    mark_not_queued()

    flags = dict(MetricJob.objects.values_list("pk", "not_queued"))
    assert [flags[row.pk] for row in marked] == [True, True, True]
    assert [flags[row.pk] for row in (finished, other_error, no_error)] == [False, False, False]
    # The message stays: pages and the API show it.
    assert MetricJob.objects.get(pk=marked[0].pk).error == OLD_ERROR
