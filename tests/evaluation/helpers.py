"""Small deterministic images and runs for the evaluation tests (shared with integration)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.sources import open_source
from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.runs.importing.services import reference_set_import
from evalhub.runs.models import MediaKind, ReferenceSet
from metrics.video_frames import write_test_video
from tests.factories import GenerationRunFactory, ImageFactory, PromptFactory
from tests.metrics.conftest import moving_pattern
from tests.runs.helpers import make_zip

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


# --- videos (FVD) ---------------------------------------------------------------------------

#: I3D's shortest clip (9 frames) keeps the random-weight network cheap on CPU; shards of two
#: videos make the run and the reference set each span two shards.
FVD_OPTIONS = {"fvd_clip_frames": 9, "fvd_allow_rank_deficient": True, "shard_size": 2}


def clip_bytes(tmp_path, name: str, *, seed: int, frames: int = 16, speed: float = 2.0) -> bytes:
    """An H.264 MP4 of a drifting colour pattern (32 px, 8 frames/s), also left in tmp_path."""
    pattern = moving_pattern(frames, size=32, speed=speed, seed=seed)
    return write_test_video(tmp_path / f"{name}.mp4", pattern, fps=8).read_bytes()


def make_video_run(tmp_path, *, n: int = 3, seed: int = 0, frames: int = 16):
    """A video run of ``n`` moving-pattern clips of one prompt, and the clips' files."""
    run = GenerationRunFactory(media_kind=MediaKind.VIDEO)
    prompt = PromptFactory(prompt_set=run.prompt_set, text="a pattern moving right")
    files = []
    for i in range(n):
        data = clip_bytes(tmp_path, f"run{seed}-{i}", seed=seed + i, frames=frames)
        video = video_store(data=data, info=video_inspect(data, name=f"{i}.mp4"),
                            name=f"{i}.mp4")
        ImageFactory(run=run, prompt=prompt, seed=i, blob=video.poster, video=video)
        files.append(tmp_path / f"run{seed}-{i}.mp4")
    return run, files


def make_video_reference_set(tmp_path, project, *, n: int = 3, seed: int = 100,
                             frames: int = 16) -> ReferenceSet:
    """Imported from a zip, as a user does: videos, plus a README that is ignored."""
    files = {f"real/{i}.mp4": clip_bytes(tmp_path, f"ref{seed}-{i}", seed=seed + i, speed=0.5,
                                         frames=frames) for i in range(n)}
    archive = make_zip(tmp_path / f"ref{seed}.zip", {**files, "README.md": b"ignored"})
    reference_set = ReferenceSet.objects.create(project=project, name=f"real-{seed}")
    with open_source(archive, max_total_bytes=10**9) as source:
        report = reference_set_import(reference_set=reference_set, source=source)
    assert report.images_created == n
    return reference_set
