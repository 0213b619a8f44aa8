"""Seeded, quality-dependent mistakes applied to a parsed scene.

A "checkpoint" of the shapes generator is characterised by ``quality`` in [0, 1]:
the probability of each kind of mistake scales with ``1 - quality`` so that
quality 1.0 is always faithful and 0.3 is visibly bad. Mistakes are recorded so
tests (and curious humans) can see exactly what went wrong.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from generators.shapes.parser import COLOURS, INVERSE, SHAPES, SIZES, ObjectSpec, Relation, Scene

# Per-group / per-relation mistake probabilities at quality 0 (scaled by 1 - q).
P_COUNT = 0.7
P_COLOUR = 0.6
P_SHAPE = 0.3
P_SIZE = 0.3
P_RELATION = 0.8


def apply_mistakes(
    scene: Scene, quality: float, rng: np.random.Generator
) -> tuple[Scene, list[dict[str, Any]]]:
    """Return the scene the model "actually drew" and the list of mistakes made.

    Random draws happen in a fixed order regardless of quality so a given seed
    degrades progressively (and reproducibly) as quality drops.
    """
    badness = 1.0 - quality
    mistakes: list[dict[str, Any]] = []
    objects: list[ObjectSpec] = []
    for index, obj in enumerate(scene.objects):
        draws = rng.random(4)
        delta = int(rng.choice([-2, -1, 1, 1, 2]))
        # Never "mistake" a colour into the background colour: an invisible shape
        # would read as a count error rather than a colour error.
        new_colour = str(rng.choice(sorted(set(COLOURS) - {obj.colour, scene.background})))
        new_shape = str(rng.choice(SHAPES))
        new_size = str(rng.choice(SIZES))
        realised = obj
        if draws[0] < P_COUNT * badness:
            count = max(1, obj.count + delta)
            if count == obj.count:  # "-2" on a single object: add one instead
                count = obj.count + 1
            mistakes.append(
                {"kind": "count", "group": index, "expected": obj.count, "actual": count}
            )
            realised = replace(realised, count=count)
        if draws[1] < P_COLOUR * badness and obj.colour is not None:
            mistakes.append(
                {"kind": "colour", "group": index, "expected": obj.colour, "actual": new_colour}
            )
            realised = replace(realised, colour=new_colour)
        if draws[2] < P_SHAPE * badness and new_shape != obj.shape:
            mistakes.append(
                {"kind": "shape", "group": index, "expected": obj.shape, "actual": new_shape}
            )
            realised = replace(realised, shape=new_shape)
        expected_size = obj.size or "medium"
        if draws[3] < P_SIZE * badness and new_size != expected_size:
            mistakes.append(
                {"kind": "size", "group": index, "expected": expected_size, "actual": new_size}
            )
            realised = replace(realised, size=new_size)
        objects.append(realised)

    relations: list[Relation] = []
    for index, rel in enumerate(scene.relations):
        if rng.random() < P_RELATION * badness:
            flipped = INVERSE[rel.relation]
            mistakes.append(
                {"kind": "position", "relation": index, "expected": rel.relation, "actual": flipped}
            )
            rel = replace(rel, relation=flipped)
        relations.append(rel)

    return replace(scene, objects=tuple(objects), relations=tuple(relations)), mistakes


def degradation_plan(quality: float, rng: np.random.Generator) -> dict[str, float]:
    """Decide image-level artefacts (blur radius, noise sigma, block size, distortion).

    All zero at quality 1.0. Values are plain floats so they go into metadata.
    """
    badness = 1.0 - quality
    draws = rng.random(4)
    plan = {
        "blur": round(float(3.0 * badness), 3) if draws[0] < 1.2 * badness else 0.0,
        "noise": round(float(45.0 * badness), 3) if draws[1] < 1.2 * badness else 0.0,
        # Blocks 4..16 px: a JPEG-like/pixelated look.
        "blocks": float(int(4 + 12 * badness)) if draws[2] < 0.9 * badness else 0.0,
        # Fraction of the radius by which polygon vertices are jittered.
        "distortion": round(float(0.35 * badness), 3) if draws[3] < 1.2 * badness else 0.0,
    }
    return plan
