"""The built-in offline "shapes" generator."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image

from generators.base import GenerationItem, GenerationResult, Generator
from generators.shapes.mistakes import apply_mistakes, degradation_plan
from generators.shapes.parser import COLOURS, SHAPES, ObjectSpec, Scene, parse_prompt
from generators.shapes.render import DEFAULT_BACKGROUND, degrade, draw, layout

DEFAULT_SIZE = 256
# Bump when rendering changes so stored images can be told apart.
VERSION = "1"


def _rng_for(*parts: Any) -> np.random.Generator:
    """A numpy RNG seeded from a stable hash (Python's hash() is salted per process)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def random_scene(rng: np.random.Generator) -> Scene:
    """A plausible random composition for prompts we could not parse."""
    groups = int(rng.integers(1, 4))
    objects = tuple(
        ObjectSpec(
            shape=str(rng.choice(SHAPES)),
            count=int(rng.integers(1, 4)),
            colour=str(rng.choice(sorted(set(COLOURS) - {"white"}))),
            size=str(rng.choice(["small", "medium", "large"])),
        )
        for _ in range(groups)
    )
    return Scene(objects=objects)


def _default_background(scene: Scene) -> str:
    """White unless that would hide white shapes (then black, or gray if both)."""
    colours = {o.colour for o in scene.objects}
    if "white" not in colours:
        return DEFAULT_BACKGROUND
    return "gray" if "black" in colours else "black"


class ShapesGenerator(Generator):
    """Renders coloured geometric shapes described by compositional prompts.

    Needs no weights. ``quality`` (checkpoint parameter, overridable per run)
    controls seeded mistakes so different "checkpoints" are distinguishable.
    """

    name = "shapes"
    version = VERSION
    description = (
        "Offline synthetic generator: draws the counts, colours, sizes, positions and "
        "background described by prompts like 'two red circles left of a blue square'. "
        "Checkpoint parameter 'quality' (0-1) controls how many mistakes it makes."
    )
    parameters_schema = {
        "width": {
            "type": "integer",
            "default": None,
            "nullable": True,
            "minimum": 16,
            "maximum": 2048,
            "description": "Image width in pixels (default 256, or the source image's "
            "width when editing).",
        },
        "height": {
            "type": "integer",
            "default": None,
            "nullable": True,
            "minimum": 16,
            "maximum": 2048,
            "description": "Image height in pixels (default 256, or the source image's "
            "height when editing).",
        },
        "quality": {
            "type": "number",
            "default": 1.0,
            "minimum": 0.0,
            "maximum": 1.0,
            "description": "1.0 renders the prompt faithfully; lower values add seeded "
            "mistakes (counts, colours, positions) and artefacts (blur, noise, blocks).",
        },
    }

    def _generate(
        self, items: list[GenerationItem], params: dict[str, Any]
    ) -> Iterator[GenerationResult]:
        for item in items:
            yield self.run_item(item, params, lambda it: self.render(it, params))

    def render(self, item: GenerationItem, params: dict[str, Any]) -> tuple[Image.Image, dict]:
        """Render one item; returns the image and generator-specific metadata."""
        if not isinstance(item.prompt, str):
            raise TypeError(f"prompt must be a string, got {type(item.prompt).__name__}")
        quality = float(params["quality"])
        source = item.source_image
        if source is not None:
            if not isinstance(source, Image.Image):
                raise TypeError(f"source_image must be a PIL image, got {type(source).__name__}")
            source = source.convert("RGB")
        default_w, default_h = source.size if source is not None else (DEFAULT_SIZE,) * 2
        width = params["width"] or default_w
        height = params["height"] or default_h

        # Everything random derives from (prompt, seed, size, editing?) so identical
        # inputs give identical pixels. Quality is deliberately left out: the same
        # seed then draws the same random numbers at every quality and only the
        # thresholds move, so a lower-quality checkpoint makes a superset of
        # mistakes on the same composition, which makes comparisons legible.
        rng = _rng_for(VERSION, item.prompt, int(item.seed), width, height, source is not None)
        parsed = parse_prompt(item.prompt)
        scene = parsed if parsed.understood else random_scene(rng)
        realised, mistakes = apply_mistakes(scene, quality, rng)
        plan = degradation_plan(quality, rng)

        if source is not None:
            canvas = source.resize((width, height), Image.Resampling.LANCZOS)
            background = None  # editing keeps the source as the background
        else:
            background = realised.background or _default_background(realised)
            canvas = Image.new("RGB", (width, height), COLOURS[background])
        placed = layout(realised, width, height, rng, background)
        image = draw(canvas, placed, rng, distortion=plan["distortion"])
        image = degrade(image, plan, rng)

        metadata = {
            "width": width,
            "height": height,
            "mode": "edit" if source is not None else "text-to-image",
            "prompt_understood": parsed.understood,
            "parsed": parsed.to_dict(),
            "rendered": {
                "background": background,
                "objects": [p.to_dict() for p in placed],
                "counts": [o.count for o in realised.objects],
                "mistakes": mistakes,
                "degradations": plan,
            },
        }
        return image, metadata
