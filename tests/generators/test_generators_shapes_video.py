"""The offline shapes-video generator: clips follow the prompt's motions, deterministically,
and a checkpoint of higher quality measurably follows prompts better (pixels, not metadata)."""

from __future__ import annotations

import numpy as np
import pytest

from generators import CheckpointSpec, GenerationItem, create_generator, get_generator_class
from generators.shapes.parser import COLOURS
from generators.shapes_video import ShapesVideoGenerator, parse_motions
from generators.video import encode_mp4

# One shape of one colour on white, moving one way: (prompt, colour, expected unit direction).
PROMPTS = [
    ("a red circle moving right", "red", (1, 0)),
    ("a blue square falling", "blue", (0, 1)),
    ("a green hexagon rising", "green", (0, -1)),
    ("a purple triangle moving left", "purple", (-1, 0)),
]
SEEDS = range(10)


def clip(prompt: str, seed: int, quality: float, **params):
    gen = create_generator("shapes-video", CheckpointSpec("q", parameters={"quality": quality}))
    (result,) = gen.generate([GenerationItem("k", prompt, seed)], params)
    assert result.ok, result.error
    return result


def frames_array(result) -> np.ndarray:
    return np.stack([np.asarray(f, np.float32) for f in result.video.frames])


def centroids(frames: np.ndarray, colour: str) -> np.ndarray | None:
    """(x, y) of the pixels within 40 levels of ``colour``, per frame; None if it vanishes."""
    target = np.array(COLOURS[colour], np.float32)
    out = []
    for frame in frames:
        ys, xs = np.nonzero(np.abs(frame - target).max(axis=-1) < 40)
        if len(xs) < 5:
            return None
        out.append((xs.mean(), ys.mean()))
    return np.array(out)


def follows(result, colour: str, direction: tuple[int, int]) -> bool:
    """The expected colour is there in every frame and travels the asked way (at least a
    fifth of the frame size, mostly along that axis)."""
    path = centroids(frames_array(result), colour)
    if path is None:
        return False
    moved = path[-1] - path[0]
    along = moved @ np.array(direction, np.float32)
    return bool(along > 0.2 * 128 and along > 2 * abs(moved @ np.array(direction[::-1])))


def flicker(result) -> float:
    """Mean absolute change of mean brightness between consecutive frames (grey levels)."""
    means = frames_array(result).mean(axis=(1, 2, 3))
    return float(np.abs(np.diff(means)).mean())


def test_registered_as_a_video_generator():
    cls = get_generator_class("shapes-video")
    assert cls is ShapesVideoGenerator and cls.media_kind == "video"


@pytest.mark.parametrize(("prompt", "expected"), [
    ("a red circle moving right", ["right"]),
    ("a spinning red star", ["spin"]),
    ("two red circles moving left and a blue square falling", ["left", "down"]),
    ("a yellow triangle bouncing on a black background", ["bounce"]),
    ("a green hexagon", ["still"]),
])
def test_motions_are_read_per_group(prompt, expected):
    assert parse_motions(prompt, len(expected)) == expected


def test_a_clip_has_the_asked_frames_and_its_poster_is_the_middle_frame():
    result = clip("a red circle moving right", 0, 1.0, frames=9, fps=12, width=96, height=64)
    assert len(result.video.frames) == 9 and result.video.fps == 12
    assert result.video.frames[0].size == (96, 64)
    assert result.image is result.video.frames[4]
    assert result.metadata["motions"] == {"expected": ["right"], "rendered": ["right"]}


def test_the_same_item_gives_the_same_clip_and_the_same_file():
    a, b = clip("a blue square falling", 3, 0.4), clip("a blue square falling", 3, 0.4)
    assert np.array_equal(frames_array(a), frames_array(b))
    assert encode_mp4(a.video.frames, 8) == encode_mp4(b.video.frames, 8)
    assert not np.array_equal(frames_array(a), frames_array(clip("a blue square falling", 4,
                                                                 0.4)))


def test_a_perfect_checkpoint_follows_every_prompt_without_flicker():
    for prompt, colour, direction in PROMPTS:
        for seed in SEEDS:
            result = clip(prompt, seed, 1.0)
            assert follows(result, colour, direction), (prompt, seed)
            assert flicker(result) < 0.5


def test_a_higher_quality_checkpoint_is_measurably_better():
    def score(quality: float) -> tuple[float, float]:
        results = [(clip(p, s, quality), c, d) for p, c, d in PROMPTS for s in SEEDS]
        followed = np.mean([follows(r, c, d) for r, c, d in results])
        return float(followed), float(np.mean([flicker(r) for r, _, _ in results]))

    good_followed, good_flicker = score(0.9)
    bad_followed, bad_flicker = score(0.3)
    assert good_followed >= 0.8 and bad_followed <= good_followed - 0.25
    assert bad_flicker > 2 * good_flicker + 1.0
