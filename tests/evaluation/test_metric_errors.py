"""One metric's trouble is that metric's: images too small for LPIPS's AlexNet are upsampled
(and the stored value says so), and a metric that fails inside a shard is reported in the
job's ``metric_errors`` while the shard's other metrics are kept (status ``partial``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evalhub.evaluation import backbones, compute
from evalhub.evaluation.models import JobStatus, MetricShard, PromptMetric, RunMetric
from evalhub.evaluation.services import metric_job_create, metric_job_process_inline
from metrics.imageio import decode_image
from tests.evaluation.helpers import FAST_OPTIONS, image_bytes, make_reference_set, make_run

pytestmark = pytest.mark.django_db


def _compute(run, metrics, reference_set=None, **options):
    job = metric_job_create(run=run, metrics=metrics, reference_set=reference_set,
                            options={**FAST_OPTIONS, **options}, enqueue=False)
    return metric_job_process_inline(job=job)


def test_lpips_diversity_of_16_px_images_is_computed_upsampled_and_says_so():
    """Two seeds of a 16x16 PNG: AlexNet has no fifth layer below 31 px, which failed the
    whole job (and FID, KID, CLIP-score with it)."""
    backbones.clear()
    run = make_run(prompts=1, seeds=2, size=(16, 16))
    ref = make_reference_set(run.project, n=5)
    job = _compute(run, ["clip_score", "lpips_diversity", "kid", "fid"], ref)

    assert job.status == JobStatus.COMPLETED, (job.error, job.metric_errors)
    assert set(job.results) == {"clip_score", "lpips_diversity", "kid", "fid"}
    row = RunMetric.objects.get(run=run, metric="lpips_diversity")
    assert row.details["upsampled_to_px"] == 31 and row.details["prompts_upsampled"] == 1
    assert job.results["lpips_diversity"]["details"]["upsampled_to_px"] == 31
    # The value is LPIPS of the two images upsampled (bilinear) to 31 x 31.
    images = [decode_image(image_bytes(s, size=(16, 16))) for s in (0, 1)]
    up = F.interpolate(torch.stack(images).float() / 127.5 - 1, size=(31, 31), mode="bilinear",
                       align_corners=False)
    with torch.no_grad():
        expected = float(backbones.lpips({}).model(up[:1], up[1:]))
    assert row.value == pytest.approx(expected, rel=1e-5)


def test_lpips_diversity_of_large_enough_images_is_not_marked_upsampled():
    run = make_run(prompts=1, seeds=2, size=(40, 40))
    job = _compute(run, ["lpips_diversity"])
    assert job.status == JobStatus.COMPLETED
    details = RunMetric.objects.get(run=run, metric="lpips_diversity").details
    assert "upsampled_to_px" not in details and "prompts_upsampled" not in details


def test_a_metric_failing_in_a_shard_is_reported_and_the_shards_other_metrics_are_kept(
        monkeypatch):
    """A bug in one metric (here LPIPS raising) is that metric's error, with its text; the
    CLIP-scores computed by the same shard are stored and summarised."""
    def broken(scorer, images):
        raise RuntimeError("Output size is too small")

    monkeypatch.setattr(compute, "_lpips_group", broken)
    run = make_run(prompts=2, seeds=2)
    job = _compute(run, ["clip_score", "lpips_diversity"], shard_size=2)  # a prompt a shard

    assert job.status == JobStatus.PARTIAL, job.error
    assert set(job.results) == {"clip_score"}
    message = job.metric_errors["lpips_diversity"]
    assert message.startswith("shard 0: internal error: RuntimeError(")
    assert "Output size is too small" in message
    assert "(and 1 other shard)" in message
    assert RunMetric.objects.filter(run=run, metric="clip_score").exists()
    assert not RunMetric.objects.filter(run=run, metric="lpips_diversity").exists()
    assert not PromptMetric.objects.filter(run=run, metric="lpips_diversity").exists()
    shards = MetricShard.objects.filter(job=job)
    assert all(s.status == "done" for s in shards)
    assert all("lpips_diversity" in s.payload["errors"] for s in shards)


def test_a_metric_failing_everywhere_fails_the_job_with_its_reason(monkeypatch):
    def broken(scorer, images):
        raise ValueError("images of one prompt disagree")

    monkeypatch.setattr(compute, "_lpips_group", broken)
    job = _compute(make_run(prompts=1, seeds=2), ["lpips_diversity"])
    assert job.status == JobStatus.FAILED
    assert job.metric_errors == {"lpips_diversity": "shard 0: images of one prompt disagree"}
    assert "lpips_diversity: shard 0: images of one prompt disagree" in job.error
    assert np.isfinite(job.progress)
