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
