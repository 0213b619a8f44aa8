"""Per-image feature cache keyed by (image sha256, backbone id).

Features depend only on the image bytes and the backbone (architecture, layer, preprocessing,
weights), so they are computed once and reused across runs, metrics and reference sets. The
``backbone_id`` of :class:`metrics.weights.BackboneInfo` includes everything that changes the
features (resize mode, random-weights seed), which makes it a safe key.

:class:`FeatureCache` is a Protocol; the Django side implements it on a database table. Two
implementations live here: :class:`InMemoryFeatureCache` and :class:`DirectoryFeatureCache`
(one ``.npy`` file per image under ``root/<backbone>/<sha[:2]>/<sha>.npy``).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from torch import Tensor

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@runtime_checkable
class FeatureCache(Protocol):
    """Storage of per-image feature vectors."""

    def get_many(self, shas: Sequence[str], backbone_id: str) -> dict[str, np.ndarray]:
        """Cached vectors for those of ``shas`` that are present (missing keys are absent)."""
        ...

    def put_many(self, features: dict[str, np.ndarray], backbone_id: str) -> None:
        """Store vectors (sha -> 1-d float32 array); overwriting is allowed."""
        ...


class FeatureExtractor(Protocol):
    """What :func:`features_for` needs from a backbone (Inception, CLIP embedder...)."""

    @property
    def backbone_id(self) -> str: ...

    def extract(self, images: Sequence[Tensor]) -> np.ndarray:
        """uint8 (3,H,W) images -> (n, d) float32."""
        ...


class InMemoryFeatureCache:
    """Dict-backed cache (tests, single-process benchmarks). Thread-safe."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], np.ndarray] = {}
        self._lock = threading.Lock()

    def get_many(self, shas: Sequence[str], backbone_id: str) -> dict[str, np.ndarray]:
        with self._lock:
            return {s: self._data[(s, backbone_id)] for s in shas if (s, backbone_id) in self._data}

    def put_many(self, features: dict[str, np.ndarray], backbone_id: str) -> None:
        with self._lock:
            for sha, vec in features.items():
                self._data[(sha, backbone_id)] = np.asarray(vec, dtype=np.float32).copy()

    def __len__(self) -> int:
        return len(self._data)


class DirectoryFeatureCache:
    """One ``.npy`` per (backbone, image) under ``root``; writes are atomic (tmp + rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, sha: str, backbone_id: str) -> Path:
        if not _SHA_RE.match(sha):
            raise ValueError(f"not a lowercase hex sha256: {sha!r}")
        safe = re.sub(r"[^A-Za-z0-9._+-]", "_", backbone_id)  # ids contain "/" and ":"
        return self.root / safe / sha[:2] / f"{sha}.npy"

    def get_many(self, shas: Sequence[str], backbone_id: str) -> dict[str, np.ndarray]:
        out = {}
        for sha in shas:
            path = self._path(sha, backbone_id)
            try:
                out[sha] = np.load(path, allow_pickle=False)
            except (FileNotFoundError, ValueError, OSError):
                continue  # absent or truncated: treat as a miss, it will be recomputed
        return out

    def put_many(self, features: dict[str, np.ndarray], backbone_id: str) -> None:
        for sha, vec in features.items():
            path = self._path(sha, backbone_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, np.asarray(vec, dtype=np.float32))
            os.replace(tmp, path)


ImageItem = tuple[str, Callable[[], Tensor]]


def features_for(
    images: Sequence[ImageItem],
    extractor: FeatureExtractor,
    cache: FeatureCache,
    *,
    chunk_size: int = 256,
    num_threads: int | None = None,
) -> np.ndarray:
    """(n, d) features for ``images`` = [(sha256, loader)], computing only cache misses.

    ``loader()`` returns a uint8 (3,H,W) tensor and is called only for misses (on a thread
    pool). An extractor offering ``extract_loaders(loaders)`` (InceptionFeatureExtractor does)
    is handed the loaders and schedules loading and inference itself; one offering
    ``preprocess(image)`` and ``extract_preprocessed(images)`` gets the per-image
    preprocessing run in the loader threads too. Misses are extracted in chunks of
    ``chunk_size`` and stored before the next chunk, so an interrupted run keeps its progress.
    Duplicate shas are computed once. Rows follow the input order.
    """
    if len(images) == 0:
        raise ValueError("no images given")
    backbone_id = extractor.backbone_id
    shas = [sha for sha, _ in images]
    found = cache.get_many(sorted(set(shas)), backbone_id)
    missing: dict[str, Callable[[], Tensor]] = {}
    for sha, loader in images:
        if sha not in found and sha not in missing:
            missing[sha] = loader
    items = list(missing.items())
    extract_loaders = getattr(extractor, "extract_loaders", None)
    if items and callable(extract_loaders):
        for start in range(0, len(items), chunk_size):
            chunk = items[start : start + chunk_size]
            feats = extract_loaders([load for _, load in chunk])
            new = {sha: feats[i] for i, (sha, _) in enumerate(chunk)}
            cache.put_many(new, backbone_id)
            found.update(new)
        items = []
    preprocess = getattr(extractor, "preprocess", None)
    split = callable(preprocess) and callable(getattr(extractor, "extract_preprocessed", None))
    if items:
        from metrics.imageio import default_num_threads

        with ThreadPoolExecutor(max_workers=num_threads or default_num_threads()) as pool:
            for start in range(0, len(items), chunk_size):
                chunk = items[start : start + chunk_size]
                if split:
                    # pool.map yields in order as loads finish: inference on the first batch
                    # overlaps with decoding of the rest of the chunk.
                    prepared = pool.map(lambda item: preprocess(item[1]()), chunk)
                    feats = extractor.extract_preprocessed(prepared)
                else:
                    feats = extractor.extract(list(pool.map(lambda item: item[1](), chunk)))
                new = {sha: feats[i] for i, (sha, _) in enumerate(chunk)}
                cache.put_many(new, backbone_id)
                found.update(new)
    return np.stack([np.asarray(found[s], dtype=np.float32) for s in shas])


def iter_chunks(seq: Sequence, size: int) -> Iterable[Sequence]:
    """Consecutive slices of ``seq`` of length ``size`` (last one shorter)."""
    for start in range(0, len(seq), size):
        yield seq[start : start + size]
