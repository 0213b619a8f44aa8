"""The database implementation of the metrics package's ``FeatureCache`` protocol."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evalhub.core.bounded import chunked, in_chunks
from evalhub.evaluation.models import FeatureCacheEntry

# Rows per query: a row carries a whole feature vector (8 KiB for Inception's 2,048 floats), so
# the bound here is memory (4 MiB a query), well under the parameter limit (core.bounded).
_CHUNK = 500


def _encode(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(np.asarray(vec, dtype="<f4").reshape(-1)).tobytes()


def _decode(data: bytes | memoryview, dim: int) -> np.ndarray:
    arr = np.frombuffer(bytes(data), dtype="<f4")
    if arr.shape[0] != dim:
        raise ValueError(f"cached feature vector has {arr.shape[0]} values, expected {dim}")
    return arr.astype(np.float32)


class DatabaseFeatureCache:
    """Feature vectors in :class:`FeatureCacheEntry` rows keyed by (image sha256, backbone id).

    Counts what passes through it (``hits``, ``misses``, ``stored``) so callers and tests can
    see that only new images were computed. Concurrent writers of the same key are harmless:
    features depend only on (bytes, backbone), and the first row written wins.
    """

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.stored = 0

    def get_many(self, shas: Sequence[str], backbone_id: str) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(shas))
        out: dict[str, np.ndarray] = {}
        for rows in in_chunks(FeatureCacheEntry.objects.filter(backbone_id=backbone_id),
                              "sha256", wanted, _CHUNK):
            for sha, dim, data in rows.values_list("sha256", "dim", "features"):
                out[sha] = _decode(data, dim)
        self.hits += len(out)
        self.misses += len(wanted) - len(out)
        return out

    def put_many(self, features: dict[str, np.ndarray], backbone_id: str) -> None:
        rows = []
        for sha, vec in features.items():
            data = _encode(vec)
            rows.append(FeatureCacheEntry(sha256=sha, backbone_id=backbone_id,
                                          dim=len(data) // 4, features=data))
        for chunk in chunked(rows, _CHUNK):
            FeatureCacheEntry.objects.bulk_create(chunk, ignore_conflicts=True)
        self.stored += len(rows)

    def count(self, backbone_id: str | None = None) -> int:
        qs = FeatureCacheEntry.objects.all()
        if backbone_id is not None:
            qs = qs.filter(backbone_id=backbone_id)
        return qs.count()
