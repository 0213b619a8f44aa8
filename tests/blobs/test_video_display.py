"""The rendition writer (blobs/video_display.py) on its own: the strip shows the evenly spaced
frames, with or without a frame count in the container, and one original always gives the
same rendition bytes."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from evalhub.blobs.video_display import (
    STRIP_FRAMES,
    STRIP_HEIGHT,
    strip_indices,
    write_rendition,
)
from metrics.video_frames import write_test_video

FRAMES = 20


def _grey_ramp(tmp_path, container: str) -> bytes:
    """A 64 x 48 clip whose frame i is a flat grey of level 10 i (so each frame says its index)."""
    frames = np.repeat(10 * np.arange(FRAMES, dtype=np.uint8), 48 * 64 * 3).reshape(
        FRAMES, 48, 64, 3)
    codec = "libvpx-vp9" if container == "webm" else "libx264"
    path = write_test_video(tmp_path / f"ramp.{container}", frames, fps=12, codec=codec,
                            options={"crf": "4"} if codec == "libx264" else {"lossless": "1"})
    return path.read_bytes()


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_the_strip_shows_the_evenly_spaced_frames_with_or_without_a_frame_count(
        tmp_path, container):
    original = _grey_ramp(tmp_path, container)
    with av.open(io.BytesIO(original)) as probe:
        counted = bool(probe.streams.video[0].frames)
    assert counted is (container == "mp4")  # WebM does not say how many frames it holds

    strip = io.BytesIO()
    assert write_rendition(io.BytesIO(original), io.BytesIO(), strip, fps=12) == FRAMES

    image = np.asarray(Image.open(io.BytesIO(strip.getvalue())).convert("L"), dtype=float)
    tile = round(64 * STRIP_HEIGHT / 48)
    assert image.shape == (STRIP_HEIGHT, STRIP_FRAMES * tile)
    levels = [image[:, k * tile : (k + 1) * tile].mean() for k in range(STRIP_FRAMES)]
    expected = [10 * i for i in strip_indices(FRAMES)]
    assert expected == [0, 30, 50, 80, 110, 140, 160, 190]
    assert np.abs(np.array(levels) - expected).max() < 4  # limited-range YUV and WebP rounding


def test_one_original_gives_the_same_rendition_bytes_and_a_playable_vp9_stream(tmp_path):
    original = _grey_ramp(tmp_path, "mp4")
    first, second = io.BytesIO(), io.BytesIO()
    write_rendition(io.BytesIO(original), first, io.BytesIO(), fps=12)
    write_rendition(io.BytesIO(original), second, io.BytesIO(), fps=12)
    assert first.getvalue() == second.getvalue()
    with av.open(io.BytesIO(first.getvalue())) as rendition:
        stream = rendition.streams.video[0]
        assert stream.codec_context.name == "vp9"
        frames = [f.to_ndarray(format="gray") for f in rendition.decode(stream)]
    assert len(frames) == FRAMES and frames[0].shape == (48, 64)
    # Realtime-deadline VP9 at CRF 32 keeps flat frames within a few levels of the original.
    assert max(abs(float(f.mean()) - 10 * i) for i, f in enumerate(frames)) < 4
