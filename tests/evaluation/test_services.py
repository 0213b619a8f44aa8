"""Metric jobs computed in-process: results, sharding, caching, idempotency, bad input."""

from __future__ import annotations

import math
import time
from collections import Counter

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied

from evalhub.core.errors import EvalHubError
from evalhub.evaluation import backbones
from evalhub.evaluation.models import (
    FeatureCacheEntry,
    ImageMetric,
    JobStatus,
    MetricJob,
    MetricShard,
    PromptMetric,
    ReferenceStats,
    RunMetric,
    ShardStatus,
)
from evalhub.evaluation.services import (
    metric_job_claim_finalize,
    metric_job_create,
    metric_job_finalize,
    metric_job_process_inline,
    metric_shard_run,
)
from metrics.gaussian import GaussianStats, frechet_distance
from metrics.imageio import decode_image
from metrics.kid import kernel_inception_distance
from tests.evaluation.helpers import (
    FAST_OPTIONS,
    add_images,
    image_bytes,
    make_reference_set,
    make_run,
)
from tests.factories import GenerationRunFactory, ImageFactory, PromptFactory

pytestmark = pytest.mark.django_db

ALL = ["fid", "kid", "clip_score", "cmmd", "lpips_diversity"]


def _compute(run, metrics, reference_set=None, **options):
    job = metric_job_create(run=run, metrics=metrics, reference_set=reference_set,
                            options={**FAST_OPTIONS, **options}, enqueue=False)
    return metric_job_process_inline(job=job)


def test_a_job_computes_every_metric_with_uncalibrated_provenance():
    run = make_run(prompts=3, seeds=2)
    ref = make_reference_set(run.project, n=6)
    job = _compute(run, ALL, ref)

    assert job.status == JobStatus.COMPLETED, job.error
    assert (job.shards_done, job.shards_total) == (4, 4)  # 2 run shards + 2 reference shards
    assert job.progress == 1.0
    rows = {m.metric: m for m in RunMetric.objects.filter(run=run)}
    assert set(rows) == set(ALL)
    for row in rows.values():
        assert row.calibrated is False and "random" in row.weights_sha256
        assert math.isfinite(row.value) and row.library_versions["torch"]
    assert rows["fid"].backbone_id == "inception-v3-fid/pool64+random:0"
    assert rows["fid"].reference_set == ref and rows["clip_score"].reference_set is None
    assert rows["kid"].std is not None and rows["kid"].details["subset_size"] == 4
    assert rows["fid"].details["rank_deficient"] is True
    assert 0 <= rows["clip_score"].value <= 100 and rows["lpips_diversity"].value > 0
    assert rows["clip_score"].n_images == 6
    # per-image CLIP-scores, per-prompt breakdowns
    scores = ImageMetric.objects.filter(image__run=run, metric="clip_score")
    assert scores.count() == 6 and not scores.filter(calibrated=True).exists()
    assert rows["clip_score"].value == pytest.approx(np.mean([s.value for s in scores]))
    per_prompt = PromptMetric.objects.filter(run=run)
    assert Counter(per_prompt.values_list("metric", flat=True)) == {"clip_score": 3,
                                                                     "lpips_diversity": 3}
    assert job.results["fid"]["uncalibrated"] is True
    assert job.results["kid"]["value"] == rows["kid"].value


def test_sharded_fid_and_kid_equal_a_single_pass_over_all_features():
    run = make_run(prompts=4, seeds=3)
    ref = make_reference_set(run.project, n=9)
    job = _compute(run, ["fid", "kid"], ref, shard_size=2)
    assert job.shards_total == 6 + 5 and job.status == JobStatus.COMPLETED, job.error

    extractor = backbones.inception(FAST_OPTIONS)
    run_feats = extractor.extract([decode_image(i.blob.file.path)
                                   for i in run.images.order_by("prompt_id", "seed")])
    ref_feats = extractor.extract([decode_image(b.file.path) for b in ref.images.order_by("id")])
    expected = frechet_distance(GaussianStats.from_features(ref_feats),
                                GaussianStats.from_features(run_feats), allow_rank_deficient=True)
    fid = RunMetric.objects.get(run=run, metric="fid").value
    assert fid == pytest.approx(expected, rel=1e-9)
    kid = kernel_inception_distance(ref_feats, run_feats, subsets=10, subset_size=4, seed=0)
    assert RunMetric.objects.get(run=run, metric="kid").value == pytest.approx(kid.mean, rel=1e-9)


def test_rerunning_computes_no_features_and_new_images_only_their_own():
    run = make_run(prompts=2, seeds=2)
    ref = make_reference_set(run.project, n=5)
    first = _compute(run, ["fid", "kid", "clip_score", "cmmd"], ref)
    computed_first = sum(first.shards.values_list("features_computed", flat=True))
    entries = FeatureCacheEntry.objects.count()
    assert computed_first == entries == 2 * (4 + 5)  # inception + CLIP, run + reference

    second = _compute(run, ["fid", "kid", "clip_score", "cmmd"], ref)
    assert second.pk != first.pk and second.status == JobStatus.COMPLETED
    assert sum(second.shards.values_list("features_computed", flat=True)) == 0
    assert FeatureCacheEntry.objects.count() == entries
    assert RunMetric.objects.filter(run=run).count() == 4  # upserted, not duplicated
    assert ImageMetric.objects.filter(image__run=run).count() == 4

    add_images(run, n=2, seed_offset=777)
    third = _compute(run, ["fid", "kid", "clip_score", "cmmd"], ref)
    assert sum(third.shards.values_list("features_computed", flat=True)) == 2 * 2
    assert FeatureCacheEntry.objects.count() == entries + 4
    assert RunMetric.objects.get(run=run, metric="clip_score").n_images == 6


def test_reference_statistics_are_cached_per_reference_set_and_refreshed_when_it_changes():
    ref_run = make_run(prompts=2, seeds=2)
    ref = make_reference_set(ref_run.project, n=6)
    _compute(ref_run, ["fid"], ref)
    stats = ReferenceStats.objects.get(reference_set=ref)
    assert (stats.n, stats.dim, stats.calibrated) == (6, 64, False)

    other = make_run(prompts=2, seeds=2, seed_offset=50, checkpoint=ref_run.checkpoint)
    job = _compute(other, ["fid"], ref)
    reference_shards = job.shards.filter(kind="reference")
    # FID only and cached statistics: the reference shards read no features at all.
    assert all(s.fid_stats is None for s in reference_shards)
    assert ReferenceStats.objects.get(reference_set=ref).updated_at == stats.updated_at

    ref.images.add(ImageFactory(run=other).blob)
    _compute(other, ["fid"], ref)
    assert ReferenceStats.objects.get(reference_set=ref).n == 7


def test_a_redelivered_shard_redoes_only_itself_and_finalize_runs_once():
    run = make_run(prompts=2, seeds=2)
    job = metric_job_create(run=run, metrics=["clip_score", "lpips_diversity"],
                            options={**FAST_OPTIONS, "shard_size": 2}, enqueue=False)
    first, second = job.shards.order_by("index")
    metric_shard_run(shard_id=first.pk)
    # Its worker died after storing results but before acking: the shard is delivered again.
    MetricShard.objects.filter(pk=first.pk).update(status=ShardStatus.RUNNING)
    metric_shard_run(shard_id=first.pk)
    metric_shard_run(shard_id=second.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED, job.error
    finished_at = job.finished_at
    # Late redeliveries and a stray finalize change nothing.
    metric_shard_run(shard_id=second.pk)
    metric_job_claim_finalize(job_id=job.pk)
    metric_job_finalize(job_id=job.pk)
    job.refresh_from_db()
    assert job.finished_at == finished_at
    assert ImageMetric.objects.filter(image__run=run).count() == 4
    assert MetricShard.objects.get(pk=first.pk).attempts == 2
    assert RunMetric.objects.filter(run=run).count() == 2


def test_an_identical_active_job_is_reused():
    run = make_run(prompts=1, seeds=2)
    a = metric_job_create(run=run, metrics=["clip_score"], enqueue=False)
    b = metric_job_create(run=run, metrics=["clip_score"], enqueue=False)
    c = metric_job_create(run=run, metrics=["clip_score", "lpips_diversity"], enqueue=False)
    assert a.pk == b.pk != c.pk


def test_only_owners_and_scientists_of_the_runs_project_create_jobs(
        project, scientist, annotator, outsider):
    run = make_run(prompts=1, seeds=2, checkpoint__model__project=project)
    for caller in (annotator, outsider):
        with pytest.raises(PermissionDenied):
            metric_job_create(run=run, metrics=["clip_score"], created_by=caller,
                              enqueue=False)
    assert not MetricJob.objects.filter(run=run).exists()
    job = metric_job_create(run=run, metrics=["clip_score"], created_by=scientist,
                            enqueue=False)
    assert job.created_by == scientist and job.project_id == project.id


# --- bad input ---------------------------------------------------------------------------------


def test_a_run_without_images_is_refused_with_a_clear_message():
    run = GenerationRunFactory(name="empty-run")
    with pytest.raises(EvalHubError, match="Run 'empty-run' has no images"):
        metric_job_create(run=run, metrics=["clip_score"], enqueue=False)


@pytest.mark.parametrize(("metrics", "options", "message"), [
    (["fid"], {}, "fid compares the run with real images: choose a reference set"),
    (["bleu"], {}, "Unknown metric"),
    ([], {}, "at least one metric"),
    (["clip_score"], {"fid_feature": "13"}, "Invalid metric job options"),
    (["clip_score"], {"shard_size": "x"}, "Invalid metric job options"),
    (["clip_score"], {"colour": 1}, "Invalid metric job options"),
])
def test_bad_job_input_is_refused(metrics, options, message):
    run = make_run(prompts=1, seeds=1)
    with pytest.raises(EvalHubError, match=message):
        metric_job_create(run=run, metrics=metrics, options=options, enqueue=False)


@pytest.mark.parametrize(("options", "problem"), [
    ({"kid_subsets": 10**9}, "kid_subsets must be between 1 and 1,000"),
    ({"kid_subset_size": 1}, "kid_subset_size must be between 2 and 10,000"),
    ({"shard_size": 10**6}, "shard_size must be between 1 and 1,024"),
    ({"kid_subsets": 1_000, "kid_subset_size": 10_000}, "kid_subsets x kid_subset_size^2"),
])
def test_options_past_what_a_worker_can_finish_are_refused(options, problem):
    # 10^9 KID subsets were accepted, and held the worker (and SQLite's write lock) for good;
    # one image per subset gave NaN, and the finalize step failed on it.
    run = make_run(prompts=1, seeds=1)
    with pytest.raises(EvalHubError) as refused:
        metric_job_create(run=run, metrics=["clip_score"], options=options, enqueue=False)
    assert any(problem in detail for detail in refused.value.details), refused.value.details


@pytest.mark.parametrize(("options", "problem"), [
    ({"clip_model": "ViT-B-33"}, "clip_model 'ViT-B-33' is not an open_clip architecture"),
    ({"clip_model": " "}, "clip_model must not be empty"),
    ({"clip_model": "hf-hub:"}, "clip_model 'hf-hub:' names no repository"),
    ({"clip_model": "vit-b-32"}, "(did you mean ViT-B-32?"),
    ({"clip_pretrained": ""}, "clip_pretrained must not be empty"),
    ({"clip_pretrained": "no_such_tag"}, "clip_pretrained 'no_such_tag' is not an open_clip "
                                         "pretrained tag of ViT-B-32 (its tags: "),
    ({"clip_model": "ViT-L-14", "clip_pretrained": "laion2b_s34b_b79k"},
     "'laion2b_s34b_b79k' is not an open_clip pretrained tag of ViT-L-14 (its tags: "),
    ({"clip_model": "ViT-L-14"}, "clip_model ViT-L-14 needs clip_pretrained: the default tag "
                                 "'laion2b_s34b_b79k' is ViT-B-32's (its tags: "),
    ({"clip_model": "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "clip_pretrained": "openai"},
     "an hf-hub: model's repository holds its weights; leave clip_pretrained out"),
])
def test_a_clip_model_open_clip_does_not_know_is_refused_before_a_worker_gets_it(
        options, problem):
    run = make_run(prompts=1, seeds=1)
    with pytest.raises(EvalHubError) as refused:
        metric_job_create(run=run, metrics=["clip_score"], options=options, enqueue=False)
    assert any(problem in detail for detail in refused.value.details), refused.value.details
    assert not MetricJob.objects.exists()


def test_every_open_clip_architecture_is_accepted_without_importing_open_clip_here():
    import open_clip

    from evalhub.evaluation.clip_names import clip_architectures
    from evalhub.evaluation.definitions import normalize_options

    assert clip_architectures() == set(open_clip.list_models())
    assert normalize_options({"clip_model": "ViT-L-14", "clip_pretrained": "openai"}
                             )["clip_model"] == "ViT-L-14"


def test_every_open_clip_pretrained_tag_is_known_without_importing_open_clip_here():
    import open_clip

    from evalhub.evaluation.clip_names import clip_pretrained_tags

    tags = clip_pretrained_tags()
    assert {(model, tag) for model, model_tags in tags.items() for tag in model_tags} == set(
        open_clip.list_pretrained())


def test_the_clip_defaults_are_the_workers():
    from evalhub.evaluation import clip_names
    from metrics import weights

    assert (clip_names.DEFAULT_CLIP_MODEL, clip_names.DEFAULT_CLIP_PRETRAINED) == (
        weights.DEFAULT_CLIP_MODEL, weights.DEFAULT_CLIP_PRETRAINED)


@pytest.mark.parametrize(("options", "stored"), [
    ({"clip_model": "ViT-L-14", "clip_pretrained": "OpenAI"}, "openai"),  # as open_clip reads it
    ({"clip_pretrained": "LAION2B-s34b-b79k"}, "laion2b_s34b_b79k"),
    ({"clip_pretrained": "/models/my-clip.pt"}, "/models/my-clip.pt"),  # the worker checks it
    ({"clip_model": "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"}, None),
])
def test_known_clip_tags_files_and_hub_models_are_accepted(options, stored):
    run = make_run(prompts=1, seeds=1)
    job = metric_job_create(run=run, metrics=["clip_score"], options=options, enqueue=False)
    assert job.options.get("clip_pretrained") == stored


def test_a_video_metric_on_an_image_run_says_so_before_asking_for_a_reference_set():
    run = make_run(prompts=1, seeds=1)
    with pytest.raises(EvalHubError, match="fvd measures videos"):
        metric_job_create(run=run, metrics=["fvd"], enqueue=False)


def test_a_reference_set_of_another_project_or_without_images_is_refused():
    run = make_run(prompts=1, seeds=1)
    foreign = make_reference_set(GenerationRunFactory().project, n=1)
    with pytest.raises(EvalHubError, match="reference_set: no such object in this project"):
        metric_job_create(run=run, metrics=["kid"], reference_set=foreign, enqueue=False)
    from evalhub.runs.models import ReferenceSet

    empty = ReferenceSet.objects.create(project=run.project, name="empty")
    with pytest.raises(EvalHubError, match="Reference set 'empty' has no images"):
        metric_job_create(run=run, metrics=["kid"], reference_set=empty, enqueue=False)


def test_too_few_reference_images_for_fid_reports_why_and_still_computes_kid_and_clip():
    run = make_run(prompts=2, seeds=2)
    ref = make_reference_set(run.project, n=6, name="tiny-ref")
    job = _compute(run, ["fid", "kid", "clip_score"], ref, fid_allow_rank_deficient=False)
    assert job.status == JobStatus.PARTIAL
    assert set(job.results) == {"kid", "clip_score"}
    message = job.metric_errors["fid"]
    assert "reference set 'tiny-ref'" in message
    assert "reference set has 6 images" in message
    assert "at least 65" in message and "64-d" in message
    assert "fid:" in job.error
    assert not RunMetric.objects.filter(run=run, metric="fid").exists()
    assert RunMetric.objects.filter(run=run, metric="kid").exists()


def test_lpips_diversity_needs_two_seeds_of_a_prompt():
    run = make_run(prompts=2, seeds=1)
    job = _compute(run, ["lpips_diversity"])
    assert job.status == JobStatus.FAILED
    assert "at least 2 images (seeds) of one prompt" in job.error


def test_grey_alpha_16bit_jpeg_and_mixed_sizes_go_through_the_pipeline():
    from evalhub.blobs.services import blob_store_bytes

    run = GenerationRunFactory()
    variants = [dict(mode="L"), dict(mode="RGBA"), dict(mode="I;16"), dict(mode="LA"),
                dict(size=(64, 32)), dict(size=(23, 57), fmt="JPEG"), dict(mode="P")]
    prompt = PromptFactory(prompt_set=run.prompt_set, text="a shape")
    for i, kwargs in enumerate(variants):
        blob = blob_store_bytes(image_bytes(900 + i, **kwargs), name=f"v{i}")
        ImageFactory(run=run, prompt=prompt, seed=i, blob=blob)
    assert {"L", "RGBA", "I;16", "LA", "P"} <= set(run.images.values_list("blob__mode",
                                                                          flat=True))
    ref = make_reference_set(run.project, n=4)
    job = _compute(run, ALL, ref)
    assert job.status == JobStatus.COMPLETED, job.error
    assert all(math.isfinite(v) for v in RunMetric.objects.filter(run=run)
               .values_list("value", flat=True))


def test_missing_weights_fail_the_job_at_once_without_retrying(monkeypatch, tmp_path):
    monkeypatch.setenv("EVALHUB_RANDOM_WEIGHTS", "0")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    run = make_run(prompts=1, seeds=2)
    ref = make_reference_set(run.project, n=2)
    job = metric_job_create(run=run, metrics=["kid"], reference_set=ref, options=FAST_OPTIONS,
                            enqueue=False)
    started = time.monotonic()
    job = metric_job_process_inline(job=job)
    assert time.monotonic() - started < 10
    assert job.status == JobStatus.FAILED
    assert "FID InceptionV3 weights are missing" in job.error
    assert "weights-inception-2015-12-05-6726825d.pth" in job.error
    assert "fetch_weights" in job.error
    shards = list(job.shards.all())
    assert [s.attempts for s in shards] == [1, 0]  # the second shard saw a failed job
    assert not RunMetric.objects.filter(run=run).exists()


def test_a_value_that_is_not_a_number_is_that_metrics_error_not_the_jobs():
    # NaN reached the database, which refused it: the whole job failed, its other metrics lost.
    from evalhub.evaluation.definitions import MetricComputed, MetricNotComputed, Provenance
    from evalhub.evaluation.services import _store_run_metric

    run = make_run(prompts=1, seeds=1)
    job = metric_job_create(run=run, metrics=["clip_score"], enqueue=False)
    prov = Provenance(backbone_id="b", weights_sha256="0" * 64, calibrated=False)
    with pytest.raises(MetricNotComputed, match="not a finite number"):
        _store_run_metric(job, "clip_score", prov, MetricComputed(value=math.nan, n_images=1),
                          with_reference=False)
    from evalhub.evaluation.models import RunMetric

    assert not RunMetric.objects.filter(run=run).exists()


def test_a_value_computed_another_way_is_kept_beside_the_one_before():
    """KID over subsets of 3 does not overwrite the run's KID over subsets of 4 (the
    leaderboard's column keeps the way most runs share); the same way again replaces it."""
    run = make_run(prompts=2, seeds=2)
    ref = make_reference_set(run.project, n=5)
    _compute(run, ["kid"], ref, kid_subset_size=4)
    _compute(run, ["kid"], ref, kid_subset_size=3)
    _compute(run, ["kid"], ref, kid_subset_size=3)

    rows = RunMetric.objects.filter(run=run, metric="kid").order_by("computed_as")
    assert [(row.details["subset_size"], row.computed_as) for row in rows] == [
        (3, "subset_size_asked=3"), (4, "subset_size_asked=4")]


def test_runs_asked_for_the_same_kid_share_its_column_whatever_their_sizes():
    """The subset size used is capped by the smaller set (here 2 images against 4 asked): the
    column kept one of two such runs, as if they had been computed differently."""
    from evalhub.evaluation.selectors import run_metric_values

    large = make_run(prompts=2, seeds=2)
    small = make_run(prompts=1, seeds=2, project=large.project)
    ref = make_reference_set(large.project, n=5)
    for run in (large, small):
        _compute(run, ["kid"], ref, kid_subset_size=4)

    used = {row.run_id: row.details["subset_size"] for row in RunMetric.objects.all()}
    assert used == {large.pk: 4, small.pk: 2}
    assert set(run_metric_values(run_ids=[large.pk, small.pk])) == {large.pk, small.pk}
