"""An FVD job through a real worker process (PostgreSQL, Redis, random-weight I3D): the run's
and the reference set's videos are read from the shared media folder in shards, and the
stored FVD is the one computed from every video in one pass."""

from __future__ import annotations

import pytest

from evalhub.evaluation.models import JobStatus, MetricJob, RunMetric
from evalhub.evaluation.services import metric_job_create
from metrics.gaussian import GaussianStats
from metrics.i3d import I3DFeatureExtractor
from metrics.video_metrics import fvd_from_stats
from tests.evaluation.helpers import FVD_OPTIONS, make_video_reference_set, make_video_run
from tests.integration.workers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(600)]


def _finished(job: MetricJob) -> bool:
    job.refresh_from_db()
    return job.finished


def test_an_fvd_job_runs_through_a_worker_and_equals_the_single_pass_fvd(worker, tmp_path):
    run, run_files = make_video_run(tmp_path, n=3)
    reference_set = make_video_reference_set(tmp_path, run.project, n=3)
    job = metric_job_create(run=run, metrics=["fvd"], reference_set=reference_set,
                            options=FVD_OPTIONS)
    assert job.shards_total == 4
    wait_until(lambda: _finished(job), timeout=500, what="FVD job", on_timeout=worker.log)
    assert job.status == JobStatus.COMPLETED, job.error
    assert "run_shard" in worker.log()

    row = RunMetric.objects.get(run=run, metric="fvd", reference_set=reference_set)
    extractor = I3DFeatureExtractor(weights="random", clip_frames=FVD_OPTIONS["fvd_clip_frames"])
    expected = fvd_from_stats(
        GaussianStats.from_features(extractor.extract_sources(
            [v.file.path for v in reference_set.videos.order_by("id")])),
        GaussianStats.from_features(extractor.extract_sources([str(f) for f in run_files])),
        extractor.info, allow_rank_deficient=True)
    assert row.value == pytest.approx(expected.fvd, rel=1e-5)
    assert (row.backbone_id, row.weights_sha256, row.calibrated) == (
        extractor.info.backbone_id, "random:0", False)
