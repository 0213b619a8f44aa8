"""The diffusers text-to-video generator, end to end on a tiny random pipeline built offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generators.base import CheckpointSpec, GenerationItem
from generators.registry import create_generator, get_generator_class
from generators.video import encode_mp4

pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

FAST = {"num_inference_steps": 2, "width": 32, "height": 32, "num_frames": 4, "fps": 6}


def make(path: Path, **params: object):
    return create_generator("diffusers-video", CheckpointSpec("tiny", str(path),
                                                              {**FAST, **params}), device="cpu")


def test_clips_are_deterministic_per_seed_and_store_as_valid_videos(tiny_t2v_path: Path):
    items = [GenerationItem("a", "a red circle moving right", 1),
             GenerationItem("b", "a red circle moving right", 2)]
    first = list(make(tiny_t2v_path).generate(items, {}))
    again = list(make(tiny_t2v_path).generate(items[:1], {}))
    assert [r.ok for r in first] == [True, True]
    clip = first[0].video
    assert len(clip.frames) == 4 and clip.fps == 6 and clip.frames[0].size == (32, 32)
    assert first[0].image is clip.frames[2]  # the poster is the middle frame
    same = [np.asarray(f) for f in again[0].video.frames]
    assert all(np.array_equal(np.asarray(f), g) for f, g in zip(clip.frames, same, strict=True))
    other = [np.asarray(f, np.int16) for f in first[1].video.frames]
    assert np.abs(np.asarray(clip.frames[0], np.int16) - other[0]).mean() > 5
    meta = first[0].metadata
    assert (meta["pipeline"], meta["mode"], meta["frames"]) == (
        "TextToVideoSDPipeline", "text-to-video", 4)
    json.dumps(meta)

    from evalhub.blobs.video_validation import VideoLimits, inspect_video

    info = inspect_video(encode_mp4(clip.frames, clip.fps), name="t2v.mp4",
                         limits=VideoLimits(10**8, 60, 1000, 10**6))
    assert (info.frame_count, info.fps, info.width, info.height) == (4, 6.0, 32, 32)


def test_an_editing_item_fails_alone(tiny_t2v_path: Path):
    edit = GenerationItem("e", "make it blue", 1, source_image=Image.new("RGB", (32, 32)))
    results = list(make(tiny_t2v_path).generate(
        [edit, GenerationItem("t", "a star", 3)], {}))
    assert [r.ok for r in results] == [False, True]
    assert "text-to-video only" in results[0].error


def test_registered_as_a_video_generator():
    cls = get_generator_class("diffusers-video")
    assert cls.media_kind == "video"
    assert {"num_frames", "fps", "num_inference_steps"} <= set(cls.parameters_schema)
    assert "batch_size" not in cls.parameters_schema and "strength" not in cls.parameters_schema
