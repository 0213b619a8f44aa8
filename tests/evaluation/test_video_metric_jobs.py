"""Metric jobs on a video run: CLIP score over frames, temporal consistency and flicker are
computed per video from the stored files, stored with their backbone, and summarised per run
and prompt; video metrics on an image run are refused."""

from __future__ import annotations

import numpy as np
import pytest

from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.core.errors import EvalHubError
from evalhub.evaluation import backbones
from evalhub.evaluation.models import ImageMetric, JobStatus, PromptMetric, RunMetric
from evalhub.evaluation.services import metric_job_create, metric_job_process_inline
from evalhub.runs.models import MediaKind
from metrics.video_frames import FrameSampling, write_test_video
from metrics.video_metrics import VideoClipScorer, video_flicker
from tests.evaluation.helpers import make_run
from tests.factories import GenerationRunFactory, ImageFactory, PromptFactory
from tests.metrics.conftest import moving_pattern

pytestmark = pytest.mark.django_db

VIDEO = ["video_clip_score", "temporal_consistency", "flicker"]
OPTIONS = {"video_frames": 4, "flicker_short_side": 32, "shard_size": 2}


def _video_bytes(tmp_path, name: str, frames: np.ndarray) -> bytes:
    return write_test_video(tmp_path / f"{name}.mp4", frames, fps=8).read_bytes()


@pytest.fixture
def video_run(tmp_path):
    """Three videos of two prompts: a still one, a smoothly moving one, a flashing one."""
    smooth = moving_pattern(6, size=48, speed=2.0, seed=1)
    flashing = smooth.copy()
    flashing[1::2] //= 3
    clips = {"still": np.repeat(smooth[:1], 6, axis=0), "smooth": smooth, "flashing": flashing}
    run = GenerationRunFactory(media_kind=MediaKind.VIDEO)
    prompts = [PromptFactory(prompt_set=run.prompt_set, text=t)
               for t in ("a still pattern", "a moving pattern")]
    items = {}
    for seed, (name, frames) in enumerate(clips.items()):
        data = _video_bytes(tmp_path, name, frames)
        video = video_store(data=data, info=video_inspect(data, name=f"{name}.mp4"),
                            name=f"{name}.mp4")
        items[name] = ImageFactory(run=run, prompt=prompts[min(seed, 1)], seed=seed,
                                   blob=video.poster, video=video)
    return run, items, {name: tmp_path / f"{name}.mp4" for name in clips}


def test_a_video_job_stores_each_videos_values_and_their_means(video_run):
    backbones.clear()
    run, items, files = video_run
    job = metric_job_create(run=run, metrics=VIDEO, options=OPTIONS, enqueue=False)
    job = metric_job_process_inline(job=job)
    assert job.status == JobStatus.COMPLETED, job.metric_errors
    assert job.shards_total == 2  # three videos, two per shard

    clip, lpips = backbones.clip(OPTIONS), backbones.lpips(OPTIONS)
    for name, image in items.items():
        # Each stored value is what the metrics package computes on the same file.
        expected = VideoClipScorer(clip, sampling=FrameSampling(count=4)).score(
            files[name], image.prompt.text)
        flicker = video_flicker(lpips, files[name], short_side=32)
        rows = {r.metric: r for r in ImageMetric.objects.filter(image=image)}
        assert rows["video_clip_score"].value == pytest.approx(expected.clip_score, rel=1e-6)
        assert rows["temporal_consistency"].value == pytest.approx(
            expected.temporal_consistency, abs=1e-6)
        assert rows["flicker"].value == pytest.approx(flicker.flicker, rel=1e-6)
        assert rows["video_clip_score"].backbone_id == clip.info.backbone_id
        assert rows["flicker"].backbone_id == lpips.info.backbone_id
        assert not any(r.calibrated for r in rows.values())

    values = {m: {img: ImageMetric.objects.get(image=items[img], metric=m).value
                  for img in items} for m in VIDEO}
    # What the numbers mean: a still clip is consistent and does not flicker; a flashing one
    # flickers most.
    assert values["temporal_consistency"]["still"] == pytest.approx(1.0, abs=1e-3)
    assert values["flicker"]["still"] < values["flicker"]["smooth"] < values["flicker"]["flashing"]

    for metric in VIDEO:
        row = RunMetric.objects.get(run=run, metric=metric)
        assert row.value == pytest.approx(np.mean(list(values[metric].values())))
        assert row.n_images == 3 and row.calibrated is False
        assert job.results[metric]["uncalibrated"] is True
        moving = PromptMetric.objects.get(run=run, metric=metric, prompt=items["smooth"].prompt)
        assert moving.value == pytest.approx(
            (values[metric]["smooth"] + values[metric]["flashing"]) / 2)


def test_video_metrics_on_an_image_run_are_refused():
    run = make_run(prompts=1, seeds=1)
    with pytest.raises(EvalHubError, match="flicker measures videos"):
        metric_job_create(run=run, metrics=["flicker"], options=OPTIONS, enqueue=False)


@pytest.mark.parametrize("options", [{"video_frames": 1}, {"flicker_short_side": 4},
                                     {"video_frames": "many"}])
def test_bad_video_options_are_refused(video_run, options):
    run, _, _ = video_run
    with pytest.raises(EvalHubError, match="options"):
        metric_job_create(run=run, metrics=VIDEO, options=options, enqueue=False)


@pytest.mark.parametrize("side", [16, 30])
def test_a_flicker_short_side_lpips_cannot_take_is_refused_at_creation(video_run, side):
    """LPIPS's AlexNet needs 31 px on the shorter side: 16-30 were accepted, then failed the
    whole job (and the CLIP metrics with it) on the worker."""
    run, _, _ = video_run
    with pytest.raises(EvalHubError) as info:
        metric_job_create(run=run, metrics=VIDEO, options={"flicker_short_side": side},
                          enqueue=False)
    assert "flicker_short_side must be between 31 and 4,096" in str(info.value.details)


def test_the_smallest_flicker_short_side_is_the_smallest_side_lpips_takes():
    from evalhub.evaluation.definitions import FLICKER_MIN_SHORT_SIDE
    from metrics.lpips_distance import LPIPS_MIN_SIDE

    assert FLICKER_MIN_SHORT_SIDE == LPIPS_MIN_SIDE


def test_flicker_at_the_smallest_short_side_is_computed(video_run):
    run, _, _ = video_run
    job = metric_job_create(run=run, metrics=["flicker"],
                            options={"flicker_short_side": 31}, enqueue=False)
    job = metric_job_process_inline(job=job)
    assert job.status == JobStatus.COMPLETED, job.metric_errors
    assert RunMetric.objects.get(run=run, metric="flicker").value > 0


def test_video_options_are_recorded_and_values_computed_otherwise_are_kept_apart(video_run):
    """Video metrics computed with other ``video_frames`` or ``flicker_short_side`` are
    other values (``computed_as``), described in words, not replacements of the default ones;
    the job records the options it used, defaults included."""
    from evalhub.evaluation.selectors import run_metric_table
    from evalhub.leaderboards.text import metric_column_note

    run, _, _ = video_run
    default = metric_job_process_inline(job=metric_job_create(
        run=run, metrics=VIDEO, options={"shard_size": 2}, enqueue=False))
    assert default.options["video_frames"] == 16 and default.options["flicker_short_side"] == 256
    first = {m: RunMetric.objects.get(run=run, metric=m) for m in VIDEO}
    assert first["video_clip_score"].details["video_frames"] == 16
    assert first["temporal_consistency"].computed_as == "video_frames=16"
    assert first["flicker"].computed_as == "flicker_short_side=256"

    for metrics, options in ((VIDEO[:2], {"video_frames": 2}),
                             (["flicker"], {"flicker_short_side": 31})):
        job = metric_job_process_inline(job=metric_job_create(
            run=run, metrics=metrics, options=options, enqueue=False))
        assert job.status == JobStatus.COMPLETED, job.metric_errors
    for metric, ways in {"video_clip_score": {"video_frames=16", "video_frames=2"},
                         "temporal_consistency": {"video_frames=16", "video_frames=2"},
                         "flicker": {"flicker_short_side=256", "flicker_short_side=31"}}.items():
        assert set(RunMetric.objects.filter(run=run, metric=metric)
                   .values_list("computed_as", flat=True)) == ways, metric
    for metric, row in first.items():  # the default values are still there, unchanged
        again = RunMetric.objects.get(pk=row.pk)
        assert (again.value, again.computed_as) == (row.value, row.computed_as), metric

    columns = run_metric_table(run_ids=[run.pk]).columns  # the most recent way of each
    assert "2 sampled frames" in columns["video_clip_score"].computed_with
    assert "frames at 31 px on the shorter side" in columns["flicker"].computed_with
    note = metric_column_note("Flicker", columns["flicker"].computed_with, 0)
    assert note.endswith("frames at 31 px on the shorter side")


def test_two_jobs_with_other_video_options_at_once_each_summarise_their_own_values(video_run):
    """Per-video values are stored per (video, metric, backbone): a job with other options
    overwrites them. Each job's run value is the mean of the values its own shards computed,
    whatever another job wrote meanwhile."""
    from evalhub.evaluation.models import MetricShard
    from evalhub.evaluation.services import metric_shard_run

    backbones.clear()
    run, items, files = video_run
    sixteen = metric_job_create(run=run, metrics=["video_clip_score"],
                                options={"shard_size": 2}, enqueue=False)
    two = metric_job_create(run=run, metrics=["video_clip_score"],
                            options={"shard_size": 2, "video_frames": 2}, enqueue=False)
    shards = {job.pk: list(MetricShard.objects.filter(job=job).order_by("index")
                           .values_list("id", flat=True)) for job in (sixteen, two)}
    metric_shard_run(shard_id=shards[sixteen.pk][0])
    for shard_id in shards[two.pk]:  # overwrites the first shard's per-video values
        metric_shard_run(shard_id=shard_id)
    metric_shard_run(shard_id=shards[sixteen.pk][1])

    clip = backbones.clip({})
    for job, frames in ((sixteen, 16), (two, 2)):
        scorer = VideoClipScorer(clip, sampling=FrameSampling(count=frames))
        expected = np.mean([scorer.score(files[name], image.prompt.text).clip_score
                            for name, image in items.items()])
        row = RunMetric.objects.get(run=run, metric="video_clip_score",
                                    computed_as=f"video_frames={frames}")
        assert row.details["job"] == job.pk
        assert row.value == pytest.approx(expected, rel=1e-6), frames


def test_a_shard_stored_by_the_release_before_is_summarised_from_its_stored_rows(video_run):
    """A job that straddles a deploy: its first shard kept its per-video values only as
    ImageMetric rows, as the release before did."""
    from evalhub.evaluation.models import MetricShard
    from evalhub.evaluation.services import metric_shard_run

    run, items, _ = video_run
    job = metric_job_create(run=run, metrics=["flicker"],
                            options={"shard_size": 2, "flicker_short_side": 32}, enqueue=False)
    first, second = MetricShard.objects.filter(job=job).order_by("index")
    metric_shard_run(shard_id=first.pk)
    first.refresh_from_db()
    assert first.payload.pop("video_values") == {"flicker": {
        str(image.pk): ImageMetric.objects.get(image=image, metric="flicker").value
        for image in items.values() if image.pk in first.item_ids}}
    MetricShard.objects.filter(pk=first.pk).update(payload=first.payload)
    metric_shard_run(shard_id=second.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED, job.metric_errors
    assert RunMetric.objects.get(run=run, metric="flicker").value == pytest.approx(np.mean(
        [ImageMetric.objects.get(image=image, metric="flicker").value
         for image in items.values()]))


def test_an_image_job_keeps_its_options_without_video_defaults():
    run = make_run(prompts=1, seeds=2)
    job = metric_job_create(run=run, metrics=["clip_score"], enqueue=False)
    assert not {"video_frames", "flicker_short_side", "fvd_clip_frames"} & set(job.options)
