"""The built-in offline "shapes-video" generator: shapes that move as the prompt says.

A clip is the shapes generator's scene (counts, colours, sizes, positions, background) whose
groups move over ``frames`` frames at ``fps`` frames per second: left/right/up/down travel
:data:`TRAVEL` of the frame over the clip (bouncing off the edges), "bounce" hops, "spin" turns
once around, "still" stays. ``quality`` in [0, 1] sets seeded mistakes, with probabilities
scaled by ``badness = 1 - quality`` so that a checkpoint of higher quality is reliably better:

- the shapes generator's scene mistakes (wrong count, colour, shape, size, relation);
A moving shape starts where its whole path fits in the frame (the layout's position moved
inwards as little as needed).

- wrong motion: each group moves otherwise than asked with probability ``P_MOTION * badness``;
- jitter: with probability ``1.2 * badness`` every shape is displaced each frame by normal
  noise of ``JITTER * badness * min(width, height)`` pixels (standard deviation);
- flicker: with probability ``1.2 * badness`` each frame's brightness is multiplied by
  ``1 + u``, ``u`` uniform in ``[-FLICKER * badness, FLICKER * badness]``.

Every random draw derives from (version, prompt, seed, size, frames), never from quality, so a
lower quality makes a superset of the mistakes on the same composition (as ``shapes`` does).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from generators.base import GenerationItem, GenerationResult, Generator
from generators.shapes.generator import _default_background, _rng_for, random_scene
from generators.shapes.mistakes import apply_mistakes
from generators.shapes.parser import COLOURS, parse_prompt
from generators.shapes.render import SUPERSAMPLE, Placed, _polygon, layout
from generators.shapes_video.motion import DIRECTIONS, MOTIONS, parse_motions
from generators.video import Video

VERSION = "1"
TRAVEL = 0.5  # fraction of the frame a moving shape crosses over the clip
BOUNCE = 0.2  # hop height, fraction of the frame height
P_MOTION = 0.8
JITTER = 0.03
FLICKER = 0.35


class ShapesVideoGenerator(Generator):
    """Renders moving coloured shapes described by prompts; no weights needed."""

    name = "shapes-video"
    version = VERSION
    media_kind = "video"
    description = (
        "Offline synthetic text-to-video generator: the 'shapes' scene (counts, colours, "
        "sizes, positions, background) with motions read from the prompt ('moving left', "
        "'falling', 'bouncing', 'spinning', 'still'). Checkpoint parameter 'quality' (0-1) "
        "sets how often it gets counts or motions wrong, jitters and flickers."
    )
    parameters_schema = {
        "width": {"type": "integer", "default": 128, "minimum": 16, "maximum": 1024,
                  "multipleOf": 2, "description": "Frame width in pixels."},
        "height": {"type": "integer", "default": 128, "minimum": 16, "maximum": 1024,
                   "multipleOf": 2, "description": "Frame height in pixels."},
        "frames": {"type": "integer", "default": 16, "minimum": 2, "maximum": 240,
                   "description": "Number of frames."},
        "fps": {"type": "number", "default": 8.0, "minimum": 1.0, "maximum": 60.0,
                "description": "Frames per second."},
        "quality": {"type": "number", "default": 1.0, "minimum": 0.0, "maximum": 1.0,
                    "description": "1.0 follows the prompt faithfully; lower values add "
                    "seeded mistakes (count, colour, motion) and jitter and flicker."},
    }  # fmt: skip

    def _generate(
        self, items: list[GenerationItem], params: dict[str, Any]
    ) -> Iterator[GenerationResult]:
        for item in items:
            yield self.run_video_item(item, params, lambda it: self.render(it, params))

    def render(self, item: GenerationItem, params: dict[str, Any]) -> tuple[Video, dict]:
        """Render one clip; returns it and generator-specific metadata (what went wrong)."""
        if not isinstance(item.prompt, str):
            raise TypeError(f"prompt must be a string, got {type(item.prompt).__name__}")
        quality = float(params["quality"])
        badness = 1.0 - quality
        width, height, count = params["width"], params["height"], params["frames"]
        rng = _rng_for(VERSION, "video", item.prompt, int(item.seed), width, height, count)
        parsed = parse_prompt(item.prompt)
        scene = parsed if parsed.understood else random_scene(rng)
        expected = parse_motions(item.prompt, len(scene.objects))
        realised_scene, mistakes = apply_mistakes(scene, quality, rng)

        motions = []
        for group, motion in enumerate(expected):
            draw, other = float(rng.random()), str(rng.choice([m for m in MOTIONS if m != motion]))
            if draw < P_MOTION * badness:
                mistakes.append({"kind": "motion", "group": group, "expected": motion,
                                 "actual": other})
                motion = other
            motions.append(motion)
        draws = rng.random(2)
        jitter = JITTER * badness * min(width, height) if draws[0] < 1.2 * badness else 0.0
        flicker = FLICKER * badness if draws[1] < 1.2 * badness else 0.0

        background = realised_scene.background or _default_background(realised_scene)
        placed = layout(realised_scene, width, height, rng, background)
        angles = [float(a) for a in rng.uniform(-0.15, 0.15, size=len(placed))]
        frames = []
        for index in range(count):
            t = index / (count - 1)
            offsets = rng.normal(0.0, jitter, size=(len(placed), 2)) if jitter else None
            shapes = [
                _moved(p, motions[p.group], t, width, height,
                       offsets[k] if offsets is not None else (0.0, 0.0), angles[k])
                for k, p in enumerate(placed)
            ]
            frame = _draw_frame(width, height, COLOURS[background], shapes)
            if flicker:
                gain = 1.0 + float(rng.uniform(-flicker, flicker))
                frame = Image.fromarray(
                    np.clip(np.asarray(frame, np.float32) * gain, 0, 255).astype(np.uint8))
            frames.append(frame)

        metadata = {
            "width": width, "height": height, "frames": count, "fps": params["fps"],
            "mode": "text-to-video",
            "prompt_understood": parsed.understood,
            "parsed": parsed.to_dict(),
            "motions": {"expected": expected, "rendered": motions},
            "rendered": {
                "background": background,
                "objects": [p.to_dict() for p in placed],
                "counts": [o.count for o in realised_scene.objects],
                "mistakes": mistakes,
                "jitter_px": round(jitter, 3),
                "flicker": round(flicker, 3),
            },
        }
        return Video(tuple(frames), float(params["fps"])), metadata


def _reflect(value: float, low: float, high: float) -> float:
    """``value`` folded into ``[low, high]`` as a ball bouncing off both walls."""
    span = high - low
    if span <= 0:
        return low
    folded = (value - low) % (2 * span)
    return low + (folded if folded <= span else 2 * span - folded)


def _moved(p: Placed, motion: str, t: float, width: int, height: int,
           offset: Any, angle: float) -> tuple[Placed, float]:
    """The shape at time ``t`` in [0, 1] (position and rotation angle in radians)."""
    cx, cy = p.cx, p.cy
    if motion in DIRECTIONS:
        dx, dy = DIRECTIONS[motion]
        # Start where the whole path fits in the frame, so the shape never has to turn back.
        travel_x, travel_y = dx * TRAVEL * width, dy * TRAVEL * height
        cx = min(max(cx, p.r - min(travel_x, 0)), width - p.r - max(travel_x, 0))
        cy = min(max(cy, p.r - min(travel_y, 0)), height - p.r - max(travel_y, 0))
        cx += travel_x * t
        cy += travel_y * t
    elif motion == "bounce":
        cy -= BOUNCE * height * abs(math.sin(2 * math.pi * t))
    elif motion == "spin":
        angle += 2 * math.pi * t
    cx = _reflect(cx + float(offset[0]), p.r, width - p.r)
    cy = _reflect(cy + float(offset[1]), p.r, height - p.r)
    return Placed(p.group, p.shape, p.colour, p.size, cx, cy, p.r), angle


def _draw_frame(width: int, height: int, background: tuple[int, int, int],
                shapes: list[tuple[Placed, float]]) -> Image.Image:
    s = SUPERSAMPLE
    big = Image.new("RGB", (width * s, height * s), background)
    pen = ImageDraw.Draw(big)
    for p, angle in shapes:
        fill = COLOURS[p.colour]
        verts = _polygon(p.shape, p.cx, p.cy, p.r, angle)
        if verts is None:
            rx = p.r * (1.3 if p.shape == "ellipse" else 1.0)
            ry = p.r * (0.65 if p.shape == "ellipse" else 1.0)
            pen.ellipse([(p.cx - rx) * s, (p.cy - ry) * s, (p.cx + rx) * s, (p.cy + ry) * s],
                        fill=fill)
        else:
            pen.polygon([(x * s, y * s) for x, y in verts], fill=fill)
    return big.resize((width, height), Image.Resampling.BOX)
