"""Lay out and draw a scene with PIL, deterministically from a numpy RNG."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from generators.shapes.parser import COLOURS, Scene

# Radius as a fraction of min(width, height).
SIZE_RADIUS = {"small": 0.07, "medium": 0.11, "large": 0.17}
# Supersampling factor for anti-aliased edges (downsampled with a fixed filter).
SUPERSAMPLE = 2
DEFAULT_BACKGROUND = "white"


@dataclass(frozen=True)
class Placed:
    """One drawn shape, in output pixel coordinates."""

    group: int
    shape: str
    colour: str
    size: str
    cx: float
    cy: float
    r: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "shape": self.shape,
            "colour": self.colour,
            "size": self.size,
            "cx": round(self.cx, 2),
            "cy": round(self.cy, 2),
            "r": round(self.r, 2),
        }


def _ranks(n: int, edges: list[tuple[int, int]]) -> tuple[list[int], int]:
    """Longest-path ranks for "a before b" edges; edges closing a cycle are dropped."""
    rank = [0] * n
    kept: list[tuple[int, int]] = []
    for a, b in edges:
        # Reject an edge if b already reaches a (would create a cycle).
        reach, stack = set(), [b]
        while stack:
            node = stack.pop()
            if node in reach:
                continue
            reach.add(node)
            stack.extend(y for x, y in kept if x == node)
        if a not in reach and a != b:
            kept.append((a, b))
    for _ in range(n):  # Bellman-Ford style relaxation; n is tiny
        for a, b in kept:
            rank[b] = max(rank[b], rank[a] + 1)
    return rank, (max(rank) + 1 if n else 1)


def regions(scene: Scene) -> list[tuple[float, float, float, float]]:
    """Per-group region (x0, y0, x1, y1) in unit coordinates honouring relations.

    Groups constrained on an axis get a slot by rank along it; unconstrained
    groups may use the whole axis.
    """
    n = len(scene.objects)
    x_edges, y_edges = [], []
    constrained_x, constrained_y = set(), set()
    for rel in scene.relations:
        a, b = rel.subject, rel.target
        if rel.relation == "left_of":
            x_edges.append((a, b))
        elif rel.relation == "right_of":
            x_edges.append((b, a))
        elif rel.relation == "above":
            y_edges.append((a, b))
        else:
            y_edges.append((b, a))
        (constrained_x if rel.relation in ("left_of", "right_of") else constrained_y).update((a, b))
    xr, nx = _ranks(n, x_edges)
    yr, ny = _ranks(n, y_edges)
    out = []
    for i in range(n):
        x0, x1 = (xr[i] / nx, (xr[i] + 1) / nx) if i in constrained_x else (0.0, 1.0)
        y0, y1 = (yr[i] / ny, (yr[i] + 1) / ny) if i in constrained_y else (0.0, 1.0)
        out.append((x0, y0, x1, y1))
    return out


def layout(
    scene: Scene,
    width: int,
    height: int,
    rng: np.random.Generator,
    background: str | None = None,
) -> list[Placed]:
    """Place every shape of every group without overlaps (best effort).

    Groups without a colour get a random one that differs from ``background``.
    """
    base = min(width, height)
    palette = sorted(set(COLOURS) - {"white", background})
    placed: list[Placed] = []
    for group, (obj, (x0, y0, x1, y1)) in enumerate(
        zip(scene.objects, regions(scene), strict=True)
    ):
        size = obj.size or "medium"
        colour = obj.colour or str(rng.choice(palette))
        rx0, ry0, rx1, ry1 = x0 * width, y0 * height, x1 * width, y1 * height
        # Shrink shapes so the whole group can fit in its region.
        area = (rx1 - rx0) * (ry1 - ry0)
        radius = SIZE_RADIUS[size] * base
        radius = min(
            radius,
            0.45 * math.sqrt(area / (obj.count * math.pi)) + 1.0,
            (rx1 - rx0) / 2,
            (ry1 - ry0) / 2,
        )
        for _ in range(obj.count):
            r = radius * float(rng.uniform(0.9, 1.1))
            spot = None
            for attempt in range(200):
                shrink = 0.9 ** (attempt // 40)  # relax gradually when crowded
                rr = max(2.0, r * shrink)
                cx = float(rng.uniform(rx0 + rr, max(rx0 + rr, rx1 - rr)))
                cy = float(rng.uniform(ry0 + rr, max(ry0 + rr, ry1 - rr)))
                if all(math.hypot(cx - p.cx, cy - p.cy) > rr + p.r + 2 for p in placed):
                    spot = (cx, cy, rr)
                    break
            if spot is None:  # accept an overlap rather than drop the shape
                spot = (cx, cy, rr)
            placed.append(Placed(group, obj.shape, colour, size, *spot))
    return placed


def _polygon(
    shape: str, cx: float, cy: float, r: float, angle: float
) -> list[tuple[float, float]] | None:
    """Vertices for polygonal shapes (None for circle/ellipse)."""

    def ring(n: int, radius: float, offset: float) -> list[tuple[float, float]]:
        return [
            (
                cx + radius * math.cos(offset + 2 * math.pi * k / n),
                cy + radius * math.sin(offset + 2 * math.pi * k / n),
            )
            for k in range(n)
        ]

    up = -math.pi / 2 + angle
    if shape == "square":
        return ring(4, r * 1.1, math.pi / 4 + angle)
    if shape == "diamond":
        return ring(4, r * 1.15, up)
    if shape == "triangle":
        return ring(3, r * 1.2, up)
    if shape == "pentagon":
        return ring(5, r * 1.1, up)
    if shape == "hexagon":
        return ring(6, r * 1.1, angle)
    if shape == "star":
        outer, inner = ring(5, r * 1.25, up), ring(5, r * 0.5, up + math.pi / 5)
        return [p for pair in zip(outer, inner, strict=True) for p in pair]
    if shape == "rectangle":
        w, h = r * 1.4, r * 0.75
        return [(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h)]
    if shape == "cross":
        a, b = r * 1.1, r * 0.38
        return [
            (cx - b, cy - a),
            (cx + b, cy - a),
            (cx + b, cy - b),
            (cx + a, cy - b),
            (cx + a, cy + b),
            (cx + b, cy + b),
            (cx + b, cy + a),
            (cx - b, cy + a),
            (cx - b, cy + b),
            (cx - a, cy + b),
            (cx - a, cy - b),
            (cx - b, cy - b),
        ]
    return None


def draw(
    canvas: Image.Image,
    shapes: list[Placed],
    rng: np.random.Generator,
    distortion: float = 0.0,
) -> Image.Image:
    """Draw ``shapes`` onto a copy of ``canvas`` (RGB) with anti-aliasing."""
    width, height = canvas.size
    big = canvas.resize((width * SUPERSAMPLE, height * SUPERSAMPLE), Image.Resampling.NEAREST)
    pen = ImageDraw.Draw(big)
    s = SUPERSAMPLE
    for p in shapes:
        fill = COLOURS[p.colour]
        # Small random rotation for rotation-symmetric polygons keeps images varied.
        angle = float(rng.uniform(-0.15, 0.15))
        verts = _polygon(p.shape, p.cx, p.cy, p.r, angle)
        if verts is None:
            ry = p.r * (0.65 if p.shape == "ellipse" else 1.0)
            rx = p.r * (1.3 if p.shape == "ellipse" else 1.0)
            if distortion:
                rx *= 1 + float(rng.uniform(-distortion, distortion))
                ry *= 1 + float(rng.uniform(-distortion, distortion))
            box = [(p.cx - rx) * s, (p.cy - ry) * s, (p.cx + rx) * s, (p.cy + ry) * s]
            pen.ellipse(box, fill=fill)
            continue
        if distortion:
            jitter = rng.uniform(-distortion, distortion, size=(len(verts), 2)) * p.r
            verts = [
                (x + float(dx), y + float(dy))
                for (x, y), (dx, dy) in zip(verts, jitter, strict=True)
            ]
        pen.polygon([(x * s, y * s) for x, y in verts], fill=fill)
    return big.resize((width, height), Image.Resampling.BOX)


def degrade(image: Image.Image, plan: dict[str, float], rng: np.random.Generator) -> Image.Image:
    """Apply blur / blocky compression / noise per ``plan`` (no-op when all zero)."""
    if plan.get("blur"):
        image = image.filter(ImageFilter.GaussianBlur(plan["blur"]))
    arr = None
    block = int(plan.get("blocks", 0))
    if block:
        # JPEG-like: pull each pixel towards its block mean and quantise colours,
        # done in numpy so the result does not depend on the libjpeg build.
        arr = np.asarray(image, dtype=np.float32)
        h, w, _ = arr.shape
        # Edge-pad to whole blocks so a reshape gives per-block means in one go.
        ph, pw = -h % block, -w % block
        padded = np.pad(arr, ((0, ph), (0, pw), (0, 0)), mode="edge")
        tiles = padded.reshape(padded.shape[0] // block, block, padded.shape[1] // block, block, 3)
        means = np.broadcast_to(tiles.mean(axis=(1, 3), keepdims=True), tiles.shape)
        blended = (0.35 * tiles + 0.65 * means).reshape(padded.shape)[:h, :w]
        arr = np.round(blended / 24.0) * 24.0
    if plan.get("noise"):
        if arr is None:
            arr = np.asarray(image, dtype=np.float32).copy()
        arr = arr + rng.normal(0.0, plan["noise"], size=arr.shape).astype(np.float32)
    if arr is not None:
        image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return image
