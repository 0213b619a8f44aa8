"""Fixtures for the metrics tests: deterministic synthetic images and random-weight backbones.

Nothing here imports Django. Backbones use deterministic random weights (no network here);
they are session-scoped because building one takes seconds on CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F


def synthetic_images(n: int, size: int = 64, seed: int = 0, style: str = "smooth") -> torch.Tensor:
    """n distinct uint8 (3,size,size) images, deterministic in (n, size, seed, style).

    "smooth": colour blobs at varying scales; "stripes": high-frequency gratings with a colour
    cast. The two styles form two clearly different distributions (FID/KID well above 0).
    """
    g = torch.Generator().manual_seed(seed)
    out = []
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    for i in range(n):
        if style == "smooth":
            cells = 2 + i % 6
            field = torch.rand(1, 3, cells, cells, generator=g)
            img = F.interpolate(field, size=(size, size), mode="bilinear", align_corners=False)[0]
        else:
            freq = 4 + 20 * torch.rand(1, generator=g)
            angle = 3.1416 * torch.rand(1, generator=g)
            wave = torch.sin(freq * (xx * torch.cos(angle) + yy * torch.sin(angle)) * 6.28)
            tint = torch.rand(3, 1, 1, generator=g)
            img = (
                0.5 + 0.4 * wave.unsqueeze(0) * tint + 0.1 * torch.rand(3, size, size, generator=g)
            )
        out.append((img.clamp(0, 1) * 255).round().to(torch.uint8))
    return torch.stack(out)


def moving_pattern(n: int, size: int = 96, speed: float = 1.0, seed: int = 0) -> np.ndarray:
    """(n,size,size,3) uint8: a colour pattern drifting by ``speed`` px per frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    fx, fy, phase = rng.uniform(0.05, 0.2, 3)
    frames = []
    for t in range(n):
        x = xx + speed * t
        img = np.stack(
            [
                128 + 100 * np.sin(fx * x + phase),
                128 + 100 * np.cos(fy * yy + 0.3 * x * fy),
                128 + 90 * np.sin(0.5 * (fx * x + fy * yy)),
            ],
            -1,
        )
        frames.append(img.clip(0, 255).astype(np.uint8))
    return np.stack(frames)


#: An open_clip architecture small enough to save and load in a test (the model_cfg of an
#: ``open_clip_config.json``, as a hub repository holds it).
TINY_CLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32,
                       "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2,
                     "layers": 1},
    },
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                       "std": [0.26862954, 0.26130258, 0.27577711]},
}


def hf_cache_put(cache_dir, repo_id: str, filename: str, data: bytes) -> Path:
    """Put ``data`` in a Hugging Face hub cache as ``hf_hub_download`` leaves a file there (a
    snapshot of a commit that ``refs/main`` names), so offline lookups find it."""
    commit = "0" * 40
    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    path = repo / "snapshots" / commit / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture(scope="session")
def images_a() -> torch.Tensor:
    return synthetic_images(72, seed=1, style="smooth")


@pytest.fixture(scope="session")
def images_b() -> torch.Tensor:
    return synthetic_images(72, seed=2, style="stripes")


@pytest.fixture(scope="session")
def random_inception():
    """``random_inception(antialias=True, feature="2048")``: EvalHub's FID extractor with random
    weights on CPU, built once per session for each resize mode and layer.

    The calibration pass behind the random weights (~5-10 s of CPU) runs once per machine
    (metrics.weights.cached_random_weights keeps the result on disk); sharing the extractors
    also shares their oneDNN kernels.
    Tests only run images through them (inference mode, eval), which changes nothing.
    """
    from metrics.inception import InceptionFeatureExtractor

    built: dict[tuple[bool, str], InceptionFeatureExtractor] = {}

    def get(antialias: bool = True, feature: str = "2048") -> InceptionFeatureExtractor:
        if (antialias, feature) not in built:
            built[antialias, feature] = InceptionFeatureExtractor(
                "random", antialias=antialias, feature=feature, device="cpu")
        return built[antialias, feature]

    return get


@pytest.fixture(scope="session")
def inception_random(random_inception):
    """EvalHub's FID extractor with random weights, default (antialiased) resize, CPU."""
    return random_inception()


@pytest.fixture(scope="session")
def pool3_features(random_inception, images_a, images_b):
    """``pool3_features(antialias=True) -> (features of images_a[:24], of images_b[:24])``,
    each (24, 2048) float32, computed once per session and resize mode: at 299x299 on CPU an
    InceptionV3 forward pass costs about 0.4 s of CPU per image. Read-only for the tests."""
    computed: dict[bool, tuple[torch.Tensor, torch.Tensor]] = {}

    def get(antialias: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        if antialias not in computed:
            extractor = random_inception(antialias)
            computed[antialias] = extractor(images_a[:24]), extractor(images_b[:24])
        return computed[antialias]

    return get


@pytest.fixture(scope="session")
def clip_random():
    from metrics.clip_score import ClipEmbedder

    return ClipEmbedder(weights="random", device="cpu")


@pytest.fixture(scope="session")
def lpips_random():
    from metrics.lpips_distance import LpipsScorer

    return LpipsScorer(weights="random", device="cpu")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
