"""CLIP embeddings (open_clip) and CLIP-score.

Per image with prompt embedding t and image embedding v (both L2-normalised):

    CLIPScore(v, t) = 100 * max(cos(v, t), 0)        (Hessel et al. 2021, torchmetrics' scaling)

The run-level score is the mean of per-image scores. (torchmetrics' ``CLIPScore.compute()``
clamps the *mean* cosine instead, ``max(mean(100 cos), 0)``; the two agree whenever all cosines
are positive, which is the case for real CLIP models and real prompts.)

Backbone: open_clip ``ViT-B-32`` / ``laion2b_s34b_b79k`` by default (configurable). It is the
common open_clip default, small enough for CPU hosts, and its weights are redistributable.
torchmetrics' default is OpenAI ``ViT-L/14`` through transformers; to reproduce torchmetrics'
numbers use ``model_name="ViT-L-14", pretrained="openai"`` (same weights). Images go through
open_clip's own preprocessing transform (resize shortest side bicubic, centre crop, normalise),
exactly as open_clip users apply it. Prompts longer than the 77-token context are truncated by
open_clip's tokenizer.

Random weights (``weights="random"`` or ``EVALHUB_RANDOM_WEIGHTS=1``): open_clip's own init
(``pretrained=None``) under ``torch.manual_seed(seed)`` in a forked RNG, so the global RNG is
untouched and two constructions give identical weights. The two random towers embed into
unrelated directions: every image's embedding shares a large common component, every prompt's
another, and the two common directions make an obtuse angle, so every cosine came out
slightly negative and every CLIP-score 0 (no judge, sort or correlation had anything to work
with). :func:`align_random_towers` calibrates that away, as ``calibrate_batchnorm`` does for
random InceptionV3: a Householder reflection of the text projection,

    H = I - 2 u u^T,   u = (m_t - m_i) / ||m_t - m_i||,

with ``m_i`` and ``m_t`` the unit mean embeddings of a fixed calibration set of pictures and
prompts, maps the prompts' common direction onto the images'. H is orthogonal, so image
embeddings (hence CMMD, temporal consistency and the feature cache) and the geometry among
prompts are unchanged; image-prompt cosines become positive and vary with both (random, so
uncalibrated: they measure nothing about alignment). ``u`` is computed once per machine
(``metrics.weights.random_state_dict``).
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from metrics.weights import (
    DEFAULT_CLIP_MODEL,
    DEFAULT_CLIP_PRETRAINED,
    BackboneInfo,
    RandomWeightsRecipe,
    clip_hub_config_path,
    clip_weights_path,
    file_sha256,
    is_hf_hub_name,
    library_versions,
    random_state_dict,
    random_weights_requested,
)

#: The prompts :func:`align_random_towers` averages (a fixed part of the random recipe).
ALIGNMENT_PROMPTS = (
    "a photo of a dog", "a red circle on a white background", "two blue squares",
    "an astronaut riding a horse", "a bowl of fruit on a table", "a city street at night",
    "a watercolor painting of mountains", "three yellow stars", "a portrait of an old man",
    "a green triangle", "sunset over the sea", "a close-up of a flower",
)


def alignment_images(n: int = 8, size: int = 96) -> list[Tensor]:
    """Fixed calibration pictures for :func:`align_random_towers`: colour fields, each with a
    square of another colour and a little noise (uint8 (3, size, size))."""
    generator = torch.Generator().manual_seed(20261206)
    images = []
    for i in range(n):
        colours = torch.randint(0, 256, (2, 3, 1, 1), generator=generator)
        image = colours[0].expand(3, size, size).clone()
        x, y = (i * 37) % (size // 2), (i * 53) % (size // 2)
        image[:, y:y + size // 3, x:x + size // 3] = colours[1]
        noise = torch.randint(-12, 13, (3, size, size), generator=generator)
        images.append((image + noise).clamp(0, 255).to(torch.uint8))
    return images


def align_random_towers(model: torch.nn.Module, preprocess, tokenizer) -> Tensor:
    """The Householder vector ``u`` that maps the calibration prompts' mean direction onto
    the calibration pictures' (module docstring), float32 (d,)."""
    with torch.inference_mode():
        pixels = torch.stack([preprocess(_to_pil(image)) for image in alignment_images()])
        images = torch.nn.functional.normalize(model.encode_image(pixels).float(), dim=-1)
        texts = torch.nn.functional.normalize(
            model.encode_text(tokenizer(list(ALIGNMENT_PROMPTS))).float(), dim=-1)
    mean_image = torch.nn.functional.normalize(images.mean(0), dim=0)
    mean_text = torch.nn.functional.normalize(texts.mean(0), dim=0)
    return torch.nn.functional.normalize(mean_text - mean_image, dim=0).contiguous()


def _reflect_text_projection(model: torch.nn.Module, u: Tensor) -> None:
    """Text embeddings ``e`` become ``e H`` (``H = I - 2 u u^T``)."""
    projection = getattr(model, "text_projection", None)
    if projection is None:  # a text tower of another shape (Hugging Face): left unaligned
        warnings.warn(f"{type(model).__name__}: random CLIP towers not aligned", stacklevel=3)
        return
    reflection = torch.eye(u.numel()) - 2.0 * torch.outer(u, u)
    with torch.no_grad():
        if isinstance(projection, torch.nn.Linear):  # y = W x + b, so W' = H W, b' = H b
            projection.weight.copy_(reflection @ projection.weight)
            if projection.bias is not None:
                projection.bias.copy_(reflection @ projection.bias)
        else:  # open_clip's own text tower: e = x @ P, so P' = P H
            projection.copy_(projection @ reflection)


@contextlib.contextmanager
def _hf_offline() -> Iterator[None]:
    """Force huggingface_hub to resolve from its cache (we checked the file is there)."""
    from huggingface_hub import constants

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


def _to_pil(image: Tensor) -> Image.Image:
    if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a uint8 (3,H,W) image, got {image.dtype} {tuple(image.shape)}")
    return Image.fromarray(image.permute(1, 2, 0).cpu().numpy())


class ClipEmbedder:
    """open_clip model producing L2-normalised image and text embeddings (float32 numpy).

    Args:
        model_name, pretrained: open_clip model and tag (or a local weights file path); a
            model named ``hf-hub:<organisation>/<repository>`` is that hub repository's
            architecture (``open_clip_config.json``) and weights, read from the Hugging Face
            cache (``fetch_weights --clip-model hf-hub:...`` fills it), and ``pretrained`` is
            not used. Random weights build such an architecture from its cached config.
        weights: ``None``/``"auto"`` (real weights, or random when EVALHUB_RANDOM_WEIGHTS=1)
            or ``"random"``.
        device: defaults to CUDA when available. seed: random-weights seed.
    """

    def __init__(
        self,
        model_name: str = DEFAULT_CLIP_MODEL,
        pretrained: str = DEFAULT_CLIP_PRETRAINED,
        *,
        weights: str | None = None,
        device: str | torch.device | None = None,
        seed: int = 0,
        batch_size: int = 32,
    ) -> None:
        import open_clip

        self.device = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.batch_size = batch_size
        use_random = random_weights_requested(weights)
        hub = is_hf_hub_name(model_name)
        if use_random:
            if hub:  # the architecture is the repository's config file: cached, or fail now
                clip_hub_config_path(model_name, random_weights=True)
            with torch.random.fork_rng(devices=[]), _hf_offline():
                torch.manual_seed(seed)
                # load_weights=False: a hub repository's cached weights stay unread.
                model, _, preprocess = open_clip.create_model_and_transforms(
                    model_name, pretrained=None, load_weights=False
                )
                tokenizer = open_clip.get_tokenizer(model_name)
            model.eval()
            recipe = RandomWeightsRecipe(
                name="open_clip-" + re.sub(r"[^A-Za-z0-9._-]", "-", model_name) + "-alignment",
                build=lambda _seed: {"u": align_random_towers(model, preprocess, tokenizer)},
                sources=(align_random_towers, alignment_images, _reflect_text_projection),
                extra=model_name + "|" + "|".join(ALIGNMENT_PROMPTS))
            _reflect_text_projection(model, random_state_dict(recipe, seed)["u"])
            # "aligned": prompt embeddings (so CLIP-scores) are not those of the unaligned
            # random model that came before; image embeddings are, but named apart all the same.
            sha, calibrated, tag = f"random:{seed}+aligned", False, f"random:{seed}+aligned"
        else:
            path = clip_weights_path(model_name, pretrained)  # fails fast when not cached
            # A hub model's repository is its weights (open_clip ignores `pretrained` then).
            source = None if hub else pretrained if not Path(pretrained).is_file() else str(path)
            with _hf_offline():
                model, _, preprocess = open_clip.create_model_and_transforms(
                    model_name, pretrained=source
                )
                tokenizer = open_clip.get_tokenizer(model_name)
            sha, calibrated, tag = file_sha256(path), True, "" if hub else pretrained
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.model_name = model_name
        tag_id = Path(tag).name if tag and Path(tag).is_file() else tag
        self.info = BackboneInfo(
            backbone_id=f"open_clip:{model_name}" + (f"/{tag_id}" if tag_id else "")
            + ("" if calibrated else "+uncalibrated"),
            weights_sha256=sha,
            calibrated=calibrated,
            library_versions=library_versions("open-clip-torch"),
        )

    @property
    def backbone_id(self) -> str:
        return self.info.backbone_id

    def image_embeddings(self, images: Sequence[Tensor]) -> np.ndarray:
        """uint8 (3,H,W) RGB images -> (n, d) L2-normalised float32 embeddings."""
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            x = torch.stack([self.preprocess(_to_pil(img)) for img in chunk]).to(self.device)
            with torch.inference_mode():
                emb = self.model.encode_image(x).float()
            out.append(torch.nn.functional.normalize(emb, dim=-1).cpu().numpy())
        if not out:
            raise ValueError("no images given")
        return np.concatenate(out)

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Prompts -> (n, d) L2-normalised float32 embeddings."""
        if len(texts) == 0:
            raise ValueError("no texts given")
        out = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[start : start + self.batch_size])).to(self.device)
            with torch.inference_mode():
                emb = self.model.encode_text(tokens).float()
            out.append(torch.nn.functional.normalize(emb, dim=-1).cpu().numpy())
        return np.concatenate(out)

    def extract(self, images: Sequence[Tensor]) -> np.ndarray:
        """Alias of :meth:`image_embeddings` (the FeatureExtractor interface of feature_cache)."""
        return self.image_embeddings(list(images))


def clip_scores(image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """Per-pair CLIP-score 100 * max(cos, 0) for row-aligned (n, d) embeddings; float64 (n,)."""
    a = np.asarray(image_emb, dtype=np.float64)
    b = np.asarray(text_emb, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"image and text embeddings must align, got {a.shape} vs {b.shape}")
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return 100.0 * np.maximum(cos, 0.0)


@dataclass(frozen=True)
class ClipScoreResult:
    """Run-level mean CLIP-score and the per-image scores (0..100)."""

    mean: float
    per_image: np.ndarray


def clip_score(
    embedder: ClipEmbedder, images: Sequence[Tensor], prompts: Sequence[str]
) -> ClipScoreResult:
    """CLIP-score of each image against its prompt (same order), and their mean."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    if len(images) == 0:
        raise ValueError("CLIP-score of zero images is undefined")
    scores = clip_scores(embedder.image_embeddings(images), embedder.text_embeddings(prompts))
    return ClipScoreResult(mean=float(scores.mean()), per_image=scores)
