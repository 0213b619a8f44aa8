"""Video CLIP score, temporal consistency and flicker on clips made with PyAV (random weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metrics.clip_score import clip_scores
from metrics.inception import cpu_streams
from metrics.video_frames import FrameSampling, read_frames, write_test_video
from metrics.video_metrics import (
    VideoClipScorer,
    clip_result,
    consecutive_cosine,
    video_flicker,
)
from tests.metrics.conftest import moving_pattern


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    still = np.repeat(moving_pattern(1, seed=3), 8, axis=0)
    smooth = moving_pattern(8, speed=1.0, seed=3)
    cut = np.concatenate([moving_pattern(4, seed=3), moving_pattern(4, seed=9)[:, ::-1]])
    flashing = smooth.copy()
    flashing[1::2] = (flashing[1::2] * 0.35).astype(np.uint8)  # every other frame darkened
    return {
        name: write_test_video(d / f"{name}.mp4", frames)
        for name, frames in {
            "still": still, "smooth": smooth, "cut": cut, "flashing": flashing,
        }.items()
    }


def test_fast_frame_preprocessing_embeds_like_open_clips_own_transform(clip_random, clips):
    # Frames resized by swscale during decoding + crop/normalise in torch, against the PIL
    # path of ClipEmbedder (open_clip's transform) on the same decoded frames.
    scorer = VideoClipScorer(clip_random, sampling=FrameSampling(count=5), batch_size=2)
    assert scorer.fast
    fast, indices = scorer.frame_embeddings(clips["smooth"])
    frames = read_frames(clips["smooth"], sampling=FrameSampling(count=5))
    reference = clip_random.image_embeddings(list(frames.frames))
    assert indices == frames.indices == [0, 2, 4, 5, 7]  # round(k * 7 / 4)
    assert (fast * reference).sum(1).min() > 0.999

    # So the CLIP score over frames is the image CLIP-score averaged over the same frames.
    # (A text embedding close to the frames, so that the scores are not clamped to 0.)
    text = reference.mean(0) / np.linalg.norm(reference.mean(0))
    result = clip_result(fast, text, indices, "count=5", scorer.backbone)
    expected = clip_scores(reference, np.broadcast_to(text, reference.shape))
    assert result.clip_score > 50
    assert result.clip_score == pytest.approx(expected.mean(), abs=0.2)
    assert result.per_frame_score == pytest.approx(expected, abs=0.3)


def test_a_videos_sampled_frames_are_shared_among_the_cpu_streams(clip_random, clips):
    # On 2 CPU threads there are 2 streams: a batch of 8 sampled frames becomes 2 batches of 4,
    # one per stream, so a job's 16 frames per video keep both cores busy. (The per-stream size
    # was once computed inside the lazy frame generator, after the calling thread had been set
    # to one intra-op thread: one stream got all 8 frames and the other core idled.)
    assert cpu_streams(2) == (2, 1)
    scorer = VideoClipScorer(clip_random, sampling=FrameSampling(count=8), batch_size=8)
    batches: list[int] = []
    embed = scorer._embed
    scorer._embed = lambda frames: (batches.append(len(frames)), embed(frames))[1]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        streamed, indices = scorer.frame_embeddings(clips["smooth"])
    finally:
        torch.set_num_threads(threads)
    assert batches == [4, 4] and indices == list(range(8))
    whole = read_frames(clips["smooth"], sampling=FrameSampling(count=8), short_side=224)
    assert streamed == pytest.approx(embed(whole.frames), abs=1e-5)


def test_temporal_consistency_is_one_for_a_still_clip_and_drops_at_a_cut(clip_random, clips):
    scorer = VideoClipScorer(clip_random, sampling=FrameSampling(every=1))
    still = scorer.score(clips["still"], "a pattern")
    cut = scorer.score(clips["cut"], "a pattern")
    assert still.temporal_consistency == pytest.approx(1.0, abs=1e-3)
    assert len(cut.consecutive_cosine) == 7
    # The one step across the cut is the least similar pair, clearly below the others.
    assert int(np.argmin(cut.consecutive_cosine)) == 3
    others = np.delete(cut.consecutive_cosine, 3)
    assert cut.consecutive_cosine[3] < others.min() - 0.02
    assert cut.temporal_consistency < still.temporal_consistency
    assert cut.temporal_consistency == pytest.approx(cut.consecutive_cosine.mean())
    assert 0 <= cut.clip_score <= 100


def test_video_results_say_which_backbone_and_that_it_is_uncalibrated(clip_random, clips):
    result = VideoClipScorer(clip_random).score(clips["smooth"], "a pattern")
    assert result.backbone.backbone_id == clip_random.info.backbone_id
    assert result.backbone.weights_sha256 == "random:0+aligned"  # the aligned random CLIP
    assert result.backbone.calibrated is False
    assert result.sampling == "count=16"
    assert result.frame_indices == list(range(8))  # 16 evenly spaced of 8: all of them


def test_consecutive_cosine_formula():
    e = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, -1.0]])
    assert consecutive_cosine(e) == pytest.approx([0.0, -1.0])


def test_flicker_is_near_zero_when_still_and_large_when_frames_flash(lpips_random, clips):
    still = video_flicker(lpips_random, clips["still"], short_side=64)
    smooth = video_flicker(lpips_random, clips["smooth"], short_side=64)
    flashing = video_flicker(lpips_random, clips["flashing"], short_side=64)
    assert still.flicker < 0.2 * smooth.flicker
    assert flashing.flicker > 2 * smooth.flicker
    assert flashing.backbone.calibrated is False
    assert flashing.backbone.backbone_id == lpips_random.info.backbone_id
    assert (flashing.sampling, flashing.short_side) == ("every=1", 64)


def test_flicker_streams_across_batches_with_the_same_values_as_all_pairs_at_once(
        lpips_random, clips):
    streamed = video_flicker(lpips_random, clips["smooth"], short_side=64, batch_size=3)
    frames = read_frames(clips["smooth"], short_side=64).frames
    at_once = lpips_random.pairwise_distance(frames[:-1], frames[1:])
    assert streamed.frame_indices == list(range(8))
    assert streamed.per_step == pytest.approx(at_once, rel=1e-5, abs=1e-7)
    assert streamed.flicker == pytest.approx(at_once.mean(), rel=1e-5)


def test_flicker_of_a_single_frame_is_refused(lpips_random, clips):
    with pytest.raises(ValueError, match="at least 2"):
        video_flicker(lpips_random, clips["smooth"], sampling=FrameSampling(count=1))
