"""Metric jobs and metric judges on more items than one statement can bind.

PostgreSQL binds at most 65,535 values per statement (SQLite 32,766): a finalize step that
read a run of 100,000 images, or a metric judge that read a campaign's 200,000 images, with
one ``id IN (...)`` failed after every shard's GPU work was done. The finalize step now reads
:data:`evalhub.core.bounded.IN_CHUNK` ids at a time and the metric judges read their images
as a subquery. These tests make the chunk tiny (2) instead of building 65,536 images and
check that the chunked reads give exactly what one read gives; the real size was checked
once by a probe on 100,000-image runs (see the change's report).
"""

from __future__ import annotations

import re

import pytest

from evalhub.campaigns.models import ComparisonTask, Judgment
from evalhub.core import bounded
from evalhub.evaluation import selectors
from evalhub.evaluation.models import (
    ImageMetric,
    JobStatus,
    MetricJob,
    ReferenceStats,
    RunMetric,
    ShardKind,
)
from evalhub.evaluation.services import (
    metric_job_create,
    metric_job_finalize,
    metric_job_process_inline,
)
from evalhub.leaderboards.services import metric_judges_run
from evalhub.runs.models import Image
from tests.builders import build_campaign
from tests.evaluation.helpers import FAST_OPTIONS, make_reference_set, make_run
from tests.factories import GenerationRunFactory, ImageFactory, PromptFactory
from tests.leaderboards.helpers import set_image_metric
from tests.statements import statements

pytestmark = pytest.mark.django_db

SMALL_CHUNK = 2

_IN_LIST = re.compile(r"\bIN \(((?:%s, )*%s)\)")


def longest_in_list(seen: list[tuple[str, tuple]], table: str) -> int:
    """The most values any ``IN (...)`` list of a statement reading ``table`` bound."""
    return max((m.group(1).count("%s") for sql, _ in seen if f'FROM "{table}"' in sql
                for m in _IN_LIST.finditer(sql)), default=0)


def _finalize_again(job: MetricJob) -> dict[str, tuple[float, float | None]]:
    """Finalize ``job`` once more from its done shards, the reference statistics recomputed
    from the cached reference features (the read of the reference set's images FID makes when
    its statistics are stale), and return each metric's value and std."""
    ReferenceStats.objects.filter(reference_set=job.reference_set).delete()
    job.shards.filter(kind=ShardKind.REFERENCE).update(fid_stats=None)
    MetricJob.objects.filter(pk=job.pk).update(status=JobStatus.FINALIZING)
    metric_job_finalize(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED, job.error
    return {row.metric: (row.value, row.std) for row in RunMetric.objects.filter(run=job.run)}


def test_finalize_reading_ids_in_chunks_stores_the_values_of_one_read(monkeypatch):
    run = make_run(prompts=3, seeds=3)  # 9 run images, 7 reference images: chunks of 2
    reference = make_reference_set(run.project, n=7)
    job = metric_job_create(run=run, metrics=["fid", "kid", "clip_score", "cmmd"],
                            reference_set=reference, options=FAST_OPTIONS, enqueue=False)
    job = metric_job_process_inline(job=job)
    assert job.status == JobStatus.COMPLETED, job.error

    one_read = _finalize_again(job)
    monkeypatch.setattr(bounded, "IN_CHUNK", SMALL_CHUNK)
    with statements() as seen:
        chunked = _finalize_again(job)

    assert chunked == one_read
    assert set(chunked) == {"fid", "kid", "clip_score", "cmmd"}
    # The images, reference files and per-image CLIP-scores were read a chunk at a time.
    for table in ("runs_image", "blobs_imageblob", "evaluation_imagemetric"):
        assert longest_in_list(seen, table) == SMALL_CHUNK, table


def test_a_jobs_images_read_in_chunks_come_in_prompt_seed_order_and_references_by_id(
        monkeypatch):
    run = GenerationRunFactory()
    prompts = [PromptFactory(prompt_set=run.prompt_set) for _ in range(3)]
    # Created seed-major, so the images' ids (the chunks' order) are not prompt-seed order.
    for seed in (2, 1, 0):
        for prompt in prompts:
            ImageFactory(run=run, prompt=prompt, seed=seed)
    reference = make_reference_set(run.project, n=5)
    job = metric_job_create(run=run, metrics=["kid"], reference_set=reference,
                            options=FAST_OPTIONS, enqueue=False)
    shards = list(job.shards.order_by("index"))
    assert len([s for s in shards if s.kind == ShardKind.RUN]) > 1

    monkeypatch.setattr(bounded, "IN_CHUNK", SMALL_CHUNK)
    images = selectors.job_run_images(shards=shards)
    shas = selectors.job_reference_shas(shards=shards)

    assert [img.pk for img in images] == list(
        Image.objects.filter(run=run).order_by("prompt_id", "seed", "id")
        .values_list("pk", flat=True))
    assert all(img.blob.sha256 for img in images)  # the blob came with each image
    assert shas == list(reference.images.order_by("id").values_list("sha256", flat=True))


def test_image_values_read_in_chunks_keep_each_images_most_recent_value(monkeypatch):
    run = GenerationRunFactory()
    prompt = PromptFactory(prompt_set=run.prompt_set)
    images = [ImageFactory(run=run, prompt=prompt, seed=s) for s in range(5)]
    for k, image in enumerate(images):  # a value with an older backbone, then a newer one
        for backbone_id, value in (("clip-old", 10.0 + k), ("clip-new", 20.0 + k)):
            ImageMetric.objects.create(image=image, metric="clip_score", value=value,
                                       calibrated=True, backbone_id=backbone_id)
    ids = [img.pk for img in images] * 2  # repeated ids are read once

    one_read = selectors.image_metric_values(image_ids=ids, metric="clip_score")
    monkeypatch.setattr(bounded, "IN_CHUNK", SMALL_CHUNK)
    with statements() as seen:
        chunked = selectors.image_metric_values(image_ids=ids, metric="clip_score")

    assert chunked == one_read
    assert {i: v.value for i, v in chunked.items()} == {
        img.pk: 20.0 + k for k, img in enumerate(images)}
    assert longest_in_list(seen, "evaluation_imagemetric") == SMALL_CHUNK
    assert len(seen) == 3  # 5 ids, 2 a statement


def test_metric_judges_read_the_campaigns_image_values_with_a_subquery(monkeypatch):
    world = build_campaign(runs=3, prompts=4, annotators=1, criteria=["overall"])
    for run, score in zip(world.runs, (30.0, 20.0, 10.0), strict=True):
        for k, image in enumerate(Image.objects.filter(run=run).order_by("id")):
            set_image_metric(image, "clip_score", score + 0.01 * k)
    tasks = ComparisonTask.objects.filter(campaign=world.campaign, is_gold=False)
    assert tasks.count() > SMALL_CHUNK

    def judged() -> dict[int, str]:
        return dict(Judgment.objects.filter(campaign=world.campaign, judge_kind="metric")
                    .values_list("task_id", "outcome"))

    metric_judges_run(campaign=world.campaign, metric="clip_score")
    default_chunk = judged()
    Judgment.objects.filter(campaign=world.campaign, judge_kind="metric").delete()
    monkeypatch.setattr(bounded, "IN_CHUNK", SMALL_CHUNK)
    with statements() as seen:
        report = metric_judges_run(campaign=world.campaign, metric="clip_score")

    assert judged() == default_chunk and len(default_chunk) == tasks.count()
    assert report.skipped == 0 and report.created == tasks.count()
    # The values' read binds the metric and the campaign, no image id: the tasks' images
    # are a subquery, whatever their number.
    reads = [(sql, params) for sql, params in seen if 'FROM "evaluation_imagemetric"' in sql]
    assert len(reads) == 1
    assert reads[0][1] == ("clip_score", world.campaign.pk, world.campaign.pk)
