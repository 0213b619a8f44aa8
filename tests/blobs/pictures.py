"""Pictures for the display-derivative tests, encoded and decoded in memory."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage


def photo(size: tuple[int, int] = (96, 64), seed: int = 0) -> PILImage.Image:
    """Smooth gradients plus noise: a picture JPEG has to work on, reproducible."""
    width, height = size
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    pixels = np.stack([x, y, (x + y) / 2], axis=-1) + rng.normal(0, 12, (height, width, 3))
    return PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def encoded(img: PILImage.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def opened(data: bytes) -> PILImage.Image:
    img = PILImage.open(io.BytesIO(data))
    img.load()
    return img
