"""Small deterministic images and runs for the evaluation tests (shared with integration)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from evalhub.blobs.services import blob_store_bytes
from evalhub.runs.models import ReferenceSet
from tests.factories import GenerationRunFactory, ImageFactory, PromptFactory

#: Cheap options: pool64 features (the InceptionV3 stem only), small KID subsets, tiny shards.
#: FID on a handful of images is rank-deficient; tests that want a number allow it explicitly.
FAST_OPTIONS = {"fid_feature": "64", "fid_allow_rank_deficient": True, "kid_subsets": 10,
                "kid_subset_size": 4, "shard_size": 4}


def image_bytes(seed: int, size: tuple[int, int] = (40, 40), mode: str = "RGB",
                style: str = "smooth", fmt: str = "PNG") -> bytes:
    """A distinct image per seed: smooth colour blobs ("smooth") or stripes ("stripes")."""
    rng = np.random.default_rng(seed)
    w, h = size
    if style == "smooth":
        cells = rng.random((3 + seed % 4, 3 + seed % 4, 3))
        small = PILImage.fromarray((cells * 255).astype(np.uint8), "RGB")
        im = small.resize((w, h), PILImage.BILINEAR)
    else:
        yy, xx = np.mgrid[0:h, 0:w]
        freq = 0.2 + rng.random() * 0.8
        wave = (np.sin(freq * (xx + yy * rng.random())) + 1) / 2
        tint = rng.random(3)
        arr = (wave[..., None] * tint * 255).astype(np.uint8)
        im = PILImage.fromarray(arr, "RGB")
    out = io.BytesIO()
    if mode == "I;16":
        arr = (np.asarray(im.convert("L"), dtype=np.uint16) * 257)
        PILImage.fromarray(arr).save(out, format="PNG")  # uint16 -> I;16
    else:
        im.convert(mode).save(out, format=fmt)
    return out.getvalue()


def make_run(*, prompts: int = 3, seeds: int = 2, size: tuple[int, int] = (40, 40),
             seed_offset: int = 0, style: str = "smooth", run=None, **run_kwargs):
    """A run with ``prompts`` x ``seeds`` distinct images."""
    run = run or GenerationRunFactory(**run_kwargs)
    for p in range(prompts):
        colour = ["red", "blue", "green"][p % 3]
        prompt = PromptFactory(prompt_set=run.prompt_set, text=f"a {colour} shape number {p}")
        for s in range(seeds):
            n = seed_offset + 100 * p + s
            blob = blob_store_bytes(image_bytes(n, size=size, style=style), name=f"{n}.png")
            ImageFactory(run=run, prompt=prompt, seed=s, blob=blob)
    return run


def add_images(run, *, n: int, seed_offset: int, style: str = "smooth") -> None:
    prompt = PromptFactory(prompt_set=run.prompt_set, text=f"extra prompt {seed_offset}")
    for s in range(n):
        blob = blob_store_bytes(image_bytes(seed_offset + s, style=style),
                                name=f"x{seed_offset + s}.png")
        ImageFactory(run=run, prompt=prompt, seed=s, blob=blob)


def make_reference_set(project, *, n: int = 8, seed_offset: int = 5000,
                       style: str = "stripes", name: str | None = None) -> ReferenceSet:
    ref = ReferenceSet.objects.create(project=project, name=name or f"ref-{seed_offset}-{n}")
    for i in range(n):
        ref.images.add(blob_store_bytes(image_bytes(seed_offset + i, style=style),
                                        name=f"ref{seed_offset + i}.png"))
    return ref
