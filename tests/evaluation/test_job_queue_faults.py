"""A metric job whose shards the task queue did not take (the broker down when it was created
or resumed): the job is marked so on its row (``not_queued``, shown by the API, with an
``error`` naming how to resume it) and in the refusal, and trying again (creating the same job
again, or resuming it) really queues its shards and clears both.

The broker is down as the suite makes it down elsewhere: the ``broker`` fixture pointed at a
closed port (tests/generation/test_api.py, a run's launch). What was queued is read from the
broker itself: the messages waiting in Redis's ``gpu`` queue (kombu keeps one list per
priority step)."""

from __future__ import annotations

import base64
import json
from io import StringIO

import pytest
import redis
from django.core.management import CommandError, call_command

from evalhub.evaluation.models import JobStatus, MetricJob, ShardStatus
from evalhub.evaluation.services import RUN_SHARD_TASK, metric_job_create
from tests.evaluation.helpers import FAST_OPTIONS, make_run
from tests.integration.fixtures import REDIS_URL
from tests.ports import free_port

# Tasks are sent when the create commits: the test's transaction must really commit.
pytestmark = pytest.mark.django_db(transaction=True)

GPU_LISTS = ("gpu", *(f"gpu\x06\x16{step}" for step in (3, 6, 9)))


@pytest.fixture
def gpu_queue():
    """The broker's ``gpu`` queue, emptied before and after the test; calling it returns the
    (task name, args) of the messages waiting there."""
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*GPU_LISTS)

    def waiting() -> list[tuple[str, list]]:
        messages = [json.loads(raw) for key in GPU_LISTS for raw in client.lrange(key, 0, -1)]
        return sorted((message["headers"]["task"],
                       json.loads(base64.b64decode(message["body"]))[0])
                      for message in messages)

    yield waiting
    client.delete(*GPU_LISTS)


@pytest.fixture
def run(project):
    """Six images in two shards of three (clip_score keeps no prompt together)."""
    return make_run(prompts=3, seeds=2, checkpoint__model__project=project)


def _compute_metrics(run) -> str:
    out = StringIO()
    call_command("compute_metrics", "--project", run.project.slug, "--run", run.name,
                 "--metrics", "clip_score", "--option", "shard_size=3", stdout=out)
    return out.getvalue()


def _shard_messages(job: MetricJob) -> list[tuple[str, list]]:
    return [(RUN_SHARD_TASK, [pk]) for pk in job.shards.order_by("pk").values_list("pk",
                                                                                   flat=True)]


def _says_how_to_resume(text: str, job: MetricJob) -> bool:
    return (f"manage.py resume_metric_job {job.pk}" in text
            and f"/api/v1/metric-jobs/{job.pk}/resume/" in text)


def test_a_job_created_while_the_broker_is_down_says_on_its_row_that_nothing_is_queued(
        run, broker, gpu_queue):
    broker(f"redis://127.0.0.1:{free_port()}/0")  # the broker is down

    with pytest.raises(CommandError) as refused:
        _compute_metrics(run)

    job = MetricJob.objects.get(run=run)
    message = str(refused.value)
    assert f"Metric job {job.pk}" in message and "not queued" in message
    assert _says_how_to_resume(message, job)
    # Saved, resumable (an unfinished job), and its row says why nothing computes it.
    assert (job.status, job.shards_total, job.shards_done, job.finished_at) == (
        JobStatus.QUEUED, 2, 0, None)
    assert job.not_queued
    assert "could not be queued" in job.error and _says_how_to_resume(job.error, job)
    assert set(job.shards.values_list("status", flat=True)) == {ShardStatus.PENDING}


def test_creating_it_again_once_the_broker_is_back_queues_its_shards(run, broker, gpu_queue):
    broker(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(CommandError):
        _compute_metrics(run)
    job = MetricJob.objects.get(run=run)
    assert gpu_queue() == []

    broker(REDIS_URL)  # the broker is back
    out = _compute_metrics(run)

    assert MetricJob.objects.filter(run=run).count() == 1  # the same job, not a second one
    assert out.startswith(f"Metric job {job.pk} ") and "queued on the gpu queue." in out
    assert gpu_queue() == _shard_messages(job)  # really sent, each shard once
    job.refresh_from_db()
    assert (job.status, job.not_queued, job.error) == (JobStatus.QUEUED, False, "")


def test_creating_a_job_already_queued_again_sends_nothing_twice(run, broker, gpu_queue):
    _compute_metrics(run)
    job = MetricJob.objects.get(run=run)
    assert gpu_queue() == _shard_messages(job)

    out = _compute_metrics(run)

    assert out.startswith(f"Metric job {job.pk} ") and "queued on the gpu queue." in out
    assert gpu_queue() == _shard_messages(job)  # its messages are still there: none added
    assert not MetricJob.objects.get(pk=job.pk).not_queued

    MetricJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, shards_done=1)
    out = _compute_metrics(run)

    assert out.startswith(f"Metric job {job.pk} ")
    assert out.rstrip().endswith("already being computed (1 of 2 shards done).")
    assert gpu_queue() == _shard_messages(job)


def test_the_api_answers_503_naming_the_job_and_its_resume_and_queues_it_when_asked_again(
        api, scientist, run, broker, gpu_queue):
    api.force_authenticate(scientist)
    body = {"run": run.pk, "metrics": ["clip_score"], "options": {"shard_size": 3}}
    broker(f"redis://127.0.0.1:{free_port()}/0")

    refused = api.post("/api/v1/metric-jobs/", body, format="json")

    assert refused.status_code == 503 and refused["Retry-After"] == "30"
    job = MetricJob.objects.get(run=run)
    answer = refused.json()
    assert answer["code"] == "queue_unavailable"
    assert f"Metric job {job.pk}" in answer["detail"] and _says_how_to_resume(answer["detail"],
                                                                               job)
    shown = api.get(f"/api/v1/metric-jobs/{job.pk}/").json()
    assert (shown["status"], shown["not_queued"]) == ("queued", True)
    assert _says_how_to_resume(shown["error"], job)

    broker(REDIS_URL)
    again = api.post("/api/v1/metric-jobs/", body, format="json")

    assert again.status_code == 201, again.json()
    assert (again.json()["id"], again.json()["not_queued"], again.json()["error"]) == (
        job.pk, False, "")
    assert gpu_queue() == _shard_messages(job)


def test_a_resume_the_broker_does_not_take_is_recorded_the_same_way(
        api, scientist, run, broker, gpu_queue):
    job = metric_job_create(run=run, metrics=["clip_score"],
                            options={**FAST_OPTIONS, "shard_size": 3})
    gpu_queue_before = gpu_queue()
    assert gpu_queue_before == _shard_messages(job)
    api.force_authenticate(scientist)
    broker(f"redis://127.0.0.1:{free_port()}/0")

    refused = api.post(f"/api/v1/metric-jobs/{job.pk}/resume/")

    assert refused.status_code == 503
    assert f"Metric job {job.pk}" in refused.json()["detail"]
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.not_queued
    assert _says_how_to_resume(job.error, job)

    broker(REDIS_URL)
    resumed = api.post(f"/api/v1/metric-jobs/{job.pk}/resume/")

    assert resumed.status_code == 202
    assert (resumed.json()["not_queued"], resumed.json()["error"]) == (False, "")
    assert gpu_queue() == sorted(gpu_queue_before + _shard_messages(job))


def test_the_mark_is_the_column_not_the_wording_of_the_error(run, broker, gpu_queue):
    """Only ``not_queued`` makes a create queue an existing job's shards again: an unfinished
    job whose error merely reads like the mark (another writer, an older wording) sends
    nothing, and a job marked whatever its error says is queued."""
    job = metric_job_create(run=run, metrics=["clip_score"], options={"shard_size": 3})
    gpu_queue_before = gpu_queue()
    assert gpu_queue_before == _shard_messages(job)
    MetricJob.objects.filter(pk=job.pk).update(error="Its shards could not be queued (old)")

    metric_job_create(run=run, metrics=["clip_score"], options={"shard_size": 3})

    assert gpu_queue() == gpu_queue_before  # nothing sent twice

    MetricJob.objects.filter(pk=job.pk).update(not_queued=True, error="reworded")
    again = metric_job_create(run=run, metrics=["clip_score"], options={"shard_size": 3})

    assert again.pk == job.pk and (again.not_queued, again.error) == (False, "")
    assert gpu_queue() == sorted(gpu_queue_before + _shard_messages(job))
