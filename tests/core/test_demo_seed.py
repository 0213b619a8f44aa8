"""The demo `make run` seeds (evalhub/core/demo.py): its runs' metrics are asked for with their
launch, once."""

import pytest

from evalhub.core.demo import IMAGE_DEMO, VIDEO_DEMO, demo_seed
from evalhub.evaluation.models import JobStatus, MetricJob
from evalhub.runs.models import GenerationRun, RunStatus

pytestmark = pytest.mark.django_db


def test_each_demo_run_gets_its_metric_job_waiting_for_its_images_and_a_second_seed_adds_none(
        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():  # the batches' messages: not sent, no worker
        project = demo_seed()
    runs = GenerationRun.objects.filter(project=project)
    assert runs.count() == len(IMAGE_DEMO.checkpoints) + len(VIDEO_DEMO.checkpoints)
    assert set(runs.values_list("status", flat=True)) == {RunStatus.QUEUED}
    jobs = MetricJob.objects.filter(project=project)
    assert sorted(jobs.values_list("run_id", flat=True)) == sorted(runs.values_list("pk",
                                                                                    flat=True))
    assert {job.status for job in jobs} == {JobStatus.WAITING}
    for job in jobs.select_related("run"):
        video = job.run.name.startswith(VIDEO_DEMO.generator)
        assert sorted(job.metrics) == sorted((VIDEO_DEMO if video else IMAGE_DEMO).metrics)
    # Every start of `make run` seeds again: no second job, even once the first has finished.
    jobs.update(status=JobStatus.COMPLETED)
    with django_capture_on_commit_callbacks():
        demo_seed()
    assert MetricJob.objects.filter(project=project).count() == runs.count()
