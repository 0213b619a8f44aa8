"""Metric jobs through real worker processes (PostgreSQL, Redis, random-weight backbones)."""

from __future__ import annotations

from collections import Counter

import pytest

from evalhub.evaluation.models import (
    FeatureCacheEntry,
    ImageMetric,
    JobStatus,
    MetricJob,
    RunMetric,
    ShardStatus,
)
from evalhub.evaluation.services import metric_job_create
from evalhub.projects.models import Membership, Role
from metrics.gaussian import GaussianStats, frechet_distance
from metrics.imageio import decode_image
from metrics.inception import InceptionFeatureExtractor
from tests.evaluation.helpers import FAST_OPTIONS, make_reference_set, make_run
from tests.factories import UserFactory
from tests.integration.fixtures import REDIS_URL, VISIBILITY_TIMEOUT_S
from tests.integration.workers import wait_redeliverable, wait_until

# Each worker builds its random-weight backbones once (InceptionV3 calibration, CLIP): ~30-60 s;
# the shared worker (fixture `worker`) keeps them from one test to the next.
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(600)]


def _finished(job: MetricJob) -> bool:
    job.refresh_from_db()
    return job.finished


def _logs(*workers) -> str:
    return "\n".join(w.log()[-6000:] for w in workers)


def test_a_metric_job_runs_end_to_end_through_a_worker_and_a_rerun_computes_nothing(
        worker, api):
    run = make_run(prompts=2, seeds=3)
    ref = make_reference_set(run.project, n=6)
    metrics = ["fid", "kid", "clip_score", "cmmd", "lpips_diversity"]
    job = metric_job_create(run=run, metrics=metrics, reference_set=ref, options=FAST_OPTIONS)
    wait_until(lambda: _finished(job), timeout=300, what="metric job", on_timeout=worker.log)
    assert job.status == JobStatus.COMPLETED, job.error
    assert job.shards_done == job.shards_total == 4
    assert set(RunMetric.objects.filter(run=run).values_list("metric", flat=True)) == set(metrics)
    assert not RunMetric.objects.filter(run=run, calibrated=True).exists()
    assert ImageMetric.objects.filter(image__run=run, metric="clip_score").count() == 6

    user = UserFactory()
    Membership.objects.create(project=run.project, user=user, role=Role.SCIENTIST)
    api.force_authenticate(user)
    rows = api.get("/api/v1/run-metrics/", {"run": run.id}).json()["results"]
    assert len(rows) == 5 and all(r["uncalibrated"] is True for r in rows)

    entries = FeatureCacheEntry.objects.count()
    again = metric_job_create(run=run, metrics=metrics, reference_set=ref, options=FAST_OPTIONS)
    wait_until(lambda: _finished(again), timeout=120, what="second job", on_timeout=worker.log)
    assert again.status == JobStatus.COMPLETED, again.error
    assert sum(again.shards.values_list("features_computed", flat=True)) == 0
    assert FeatureCacheEntry.objects.count() == entries
    assert RunMetric.objects.filter(run=run).count() == 5


def test_two_workers_sharing_the_shards_give_the_single_pass_fid(worker, start_worker,
                                                                 monkeypatch):
    first, second = worker, start_worker("w2")
    run = make_run(prompts=4, seeds=3)
    ref = make_reference_set(run.project, n=8)
    job = metric_job_create(run=run, metrics=["fid"], reference_set=ref,
                            options={**FAST_OPTIONS, "shard_size": 2})
    assert job.shards_total == 6 + 4
    wait_until(lambda: _finished(job), timeout=300, what="metric job",
               on_timeout=lambda: _logs(first, second))
    assert job.status == JobStatus.COMPLETED, job.error
    assert "run_shard" in first.log() and "run_shard" in second.log()  # both took shards

    monkeypatch.setenv("EVALHUB_RANDOM_WEIGHTS", "1")
    extractor = InceptionFeatureExtractor(feature="64")
    run_feats = extractor.extract([decode_image(i.blob.file.path) for i in run.images.all()])
    ref_feats = extractor.extract([decode_image(b.file.path) for b in ref.images.all()])
    single_pass = frechet_distance(GaussianStats.from_features(ref_feats),
                                   GaussianStats.from_features(run_feats),
                                   allow_rank_deficient=True)
    fid = RunMetric.objects.get(run=run, metric="fid")
    assert fid.value == pytest.approx(single_pass, rel=1e-6)
    assert fid.backbone_id == extractor.backbone_id and fid.calibrated is False


def test_a_worker_killed_mid_job_is_resumed_by_another_without_duplicates(start_worker):
    run = make_run(prompts=8, seeds=2)
    ref = make_reference_set(run.project, n=4)
    doomed = start_worker("doomed")
    job = metric_job_create(run=run, metrics=["fid", "clip_score"], reference_set=ref,
                            options={**FAST_OPTIONS, "shard_size": 2})
    # Killed while computing a shard, one shard done before it. Not the instant the first is
    # done: the worker is then fetching the next message, and a SIGKILL between the broker
    # handing it over (BRPOP) and kombu recording it as unacknowledged loses that message (a
    # CI run lost one, and the job waited for a shard no queue held; `resume_metric_job` is
    # the way out of that, tests/evaluation). A shard is marked running only once its message
    # is recorded, so a kill while one runs leaves that message to be delivered again.
    wait_until(lambda: set(job.shards.values_list("status", flat=True)) >= {
        ShardStatus.DONE, ShardStatus.RUNNING}, timeout=240,
               what="a shard done and the next running", on_timeout=doomed.log)
    doomed.kill()
    job.refresh_from_db()
    assert not job.finished and job.shards_done < job.shards_total

    # The killed shard's message was delivered to the doomed worker just before the kill: a
    # rescuer started at once would miss it at its start and find it ~100 s later.
    wait_redeliverable(REDIS_URL, VISIBILITY_TIMEOUT_S)
    rescuer = start_worker("rescuer")  # fresh: see the generation test's rescuer
    wait_until(lambda: _finished(job), timeout=300, what="job finished after the kill",
               on_timeout=rescuer.log)
    assert job.status == JobStatus.COMPLETED, job.error
    assert job.shards_done == job.shards_total
    per_image = Counter(ImageMetric.objects.filter(image__run=run, metric="clip_score")
                        .values_list("image_id", flat=True))
    assert len(per_image) == 16 and set(per_image.values()) == {1}
    assert RunMetric.objects.filter(run=run).count() == 2
    assert "run_shard" in rescuer.log()


def test_missing_weights_fail_the_job_within_seconds_without_retries(start_worker, tmp_path):
    offline = start_worker("offline", EVALHUB_RANDOM_WEIGHTS="0",
                           TORCH_HOME=str(tmp_path / "empty-torch-home"))
    run = make_run(prompts=1, seeds=2)
    ref = make_reference_set(run.project, n=2)
    job = metric_job_create(run=run, metrics=["kid"], reference_set=ref, options=FAST_OPTIONS)
    wait_until(lambda: _finished(job), timeout=30, what="job failed", on_timeout=offline.log)
    assert job.status == JobStatus.FAILED
    assert "weights-inception-2015-12-05-6726825d.pth" in job.error
    assert "fetch_weights" in job.error
    assert sorted(job.shards.values_list("attempts", flat=True)) in ([0, 1], [1, 1])
    assert "Retry" not in offline.log()
