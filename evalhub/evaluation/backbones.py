"""Backbones (InceptionV3, CLIP, LPIPS, I3D), built once per worker process and reused.

Building one takes seconds (random weights: a calibration pass; real weights: loading files),
so a worker keeps the few it used in memory. ``WeightsMissingError`` propagates at once: the
metrics package checks the file before anything could try to download it.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from metrics.weights import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, random_weights_enabled

_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def _inception(feature: str, antialias: bool, random: bool) -> Any:
    from metrics.inception import InceptionFeatureExtractor

    return InceptionFeatureExtractor(weights="random" if random else None, feature=feature,
                                     antialias=antialias)


@functools.lru_cache(maxsize=2)
def _clip(model_name: str, pretrained: str, random: bool) -> Any:
    from metrics.clip_score import ClipEmbedder

    return ClipEmbedder(model_name, pretrained, weights="random" if random else None)


@functools.lru_cache(maxsize=1)
def _lpips(random: bool) -> Any:
    from metrics.lpips_distance import LpipsScorer

    return LpipsScorer(weights="random" if random else None)


@functools.lru_cache(maxsize=2)
def _i3d(clip_frames: int, random: bool) -> Any:
    from metrics.i3d import I3DFeatureExtractor

    return I3DFeatureExtractor(weights="random" if random else None, clip_frames=clip_frames)


def inception(options: dict[str, Any]) -> Any:
    """The FID InceptionV3 extractor for a job's options (``fid_feature``, ``antialias``)."""
    with _lock:
        return _inception(str(options.get("fid_feature", "2048")),
                          bool(options.get("antialias", True)), random_weights_enabled())


def clip(options: dict[str, Any]) -> Any:
    with _lock:
        return _clip(options.get("clip_model", DEFAULT_CLIP_MODEL),
                     options.get("clip_pretrained", DEFAULT_CLIP_PRETRAINED),
                     random_weights_enabled())


def lpips(options: dict[str, Any]) -> Any:
    with _lock:
        return _lpips(random_weights_enabled())


def i3d(options: dict[str, Any]) -> Any:
    """The FVD I3D extractor (Kinetics-400 logits) for a job's ``fvd_clip_frames``."""
    with _lock:
        return _i3d(int(options.get("fvd_clip_frames", 16)), random_weights_enabled())


def clear() -> None:
    """Forget built backbones (tests that switch weights on and off)."""
    _inception.cache_clear()
    _clip.cache_clear()
    _lpips.cache_clear()
    _i3d.cache_clear()
