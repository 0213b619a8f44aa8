"""Streaming Gaussian statistics of features, and the Fréchet distance between two of them (FID).

:class:`GaussianStats` keeps, in float64, the count n, the sum of features s (d,) and the sum
of outer products P = sum_i x_i x_i^T (d,d), exactly as torchmetrics' FID state. These are
plain sums, so shards computed on different workers merge *exactly* (up to float64 addition
order) and can be stored as bytes in a database. Derived quantities:

    mean = s / n
    cov  = (P - n * mean mean^T) / (n - 1)          (unbiased)

FID (Heusel et al. 2017), in squared feature units:

    FID = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})

Tr((S_a S_b)^{1/2}) is computed stably in float64 as sum_i sqrt(lambda_i) with lambda_i the
eigenvalues of the symmetric PSD matrix S_a^{1/2} S_b S_a^{1/2} (same spectrum as S_a S_b),
where S_a^{1/2} comes from ``eigh`` with negative round-off eigenvalues clipped to 0. Unlike
``scipy.linalg.sqrtm`` this never produces complex values or blows up on near-singular
covariances.

Rank: with n samples the covariance has rank <= n - 1. When n - 1 < d (e.g. 300 reference
images with 2048-d features) FID is still computable but strongly biased and not comparable
with published values, so :func:`frechet_distance` raises unless ``allow_rank_deficient=True``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


class InsufficientSamplesError(ValueError):
    """Too few samples for the requested statistic (message says how many are needed)."""


@dataclass
class GaussianStats:
    """Running n, sum and sum of outer products of d-dimensional features, float64 on CPU."""

    dim: int
    n: int = 0
    sum: Tensor | None = None
    outer: Tensor | None = None

    def __post_init__(self) -> None:
        if self.sum is None:
            self.sum = torch.zeros(self.dim, dtype=torch.float64)
        if self.outer is None:
            self.outer = torch.zeros(self.dim, self.dim, dtype=torch.float64)

    @classmethod
    def from_features(cls, features: Tensor | np.ndarray) -> GaussianStats:
        """Statistics of an (n, d) feature matrix."""
        f = torch.as_tensor(features)
        stats = cls(dim=f.shape[1])
        stats.update(f)
        return stats

    def update(self, features: Tensor | np.ndarray) -> GaussianStats:
        """Add an (n, d) batch of features (any float dtype/device; accumulated in float64)."""
        f = torch.as_tensor(features)
        if f.dim() != 2 or f.shape[1] != self.dim:
            raise ValueError(f"expected features of shape (n, {self.dim}), got {tuple(f.shape)}")
        if f.shape[0] == 0:
            return self
        f = f.detach().to("cpu", torch.float64)
        self.n += f.shape[0]
        self.sum += f.sum(dim=0)
        self.outer += f.T @ f
        return self

    def merge(self, other: GaussianStats) -> GaussianStats:
        """New stats of the union of both sample sets (exact: plain float64 sums)."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge stats of dim {self.dim} and {other.dim}")
        return GaussianStats(
            dim=self.dim,
            n=self.n + other.n,
            sum=self.sum + other.sum,
            outer=self.outer + other.outer,
        )

    @property
    def mean(self) -> Tensor:
        """Feature mean (d,), float64."""
        if self.n < 1:
            raise InsufficientSamplesError("mean of zero samples is undefined")
        return self.sum / self.n

    @property
    def cov(self) -> Tensor:
        """Unbiased covariance (d, d), float64: (P - n mu mu^T) / (n - 1)."""
        if self.n < 2:
            raise InsufficientSamplesError(f"covariance needs at least 2 samples, got {self.n}")
        mu = self.mean
        cov = (self.outer - self.n * torch.outer(mu, mu)) / (self.n - 1)
        return (cov + cov.T) / 2  # remove round-off asymmetry before eigh

    def to_bytes(self) -> bytes:
        """Serialise as an ``.npz`` (keys n, sum, outer), e.g. for a database BinaryField."""
        buf = io.BytesIO()
        np.savez(buf, n=np.int64(self.n), sum=self.sum.numpy(), outer=self.outer.numpy())
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> GaussianStats:
        """Inverse of :meth:`to_bytes` (no pickle is loaded)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            s = torch.from_numpy(z["sum"].astype(np.float64))
            return cls(
                dim=s.shape[0],
                n=int(z["n"]),
                sum=s,
                outer=torch.from_numpy(z["outer"].astype(np.float64)),
            )


def _psd_sqrt(mat: Tensor) -> Tensor:
    vals, vecs = torch.linalg.eigh(mat)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def trace_sqrt_product(cov_a: Tensor, cov_b: Tensor) -> float:
    """Tr((S_a S_b)^{1/2}) for symmetric PSD S_a, S_b, via eig of S_a^{1/2} S_b S_a^{1/2}."""
    a = cov_a.to(torch.float64)
    b = cov_b.to(torch.float64)
    root_a = _psd_sqrt(a)
    m = root_a @ b @ root_a
    vals = torch.linalg.eigvalsh((m + m.T) / 2)
    return float(vals.clamp(min=0).sqrt().sum())


def _check_rank(stats: GaussianStats, name: str, allow_rank_deficient: bool) -> None:
    if stats.n < 2:
        raise InsufficientSamplesError(
            f"{name} set has {stats.n} image(s); FID needs at least 2 (and at least "
            f"{stats.dim + 1} for a full-rank {stats.dim}-d covariance)"
        )
    if stats.n <= stats.dim and not allow_rank_deficient:
        raise InsufficientSamplesError(
            f"{name} set has {stats.n} images, FID needs at least {stats.dim + 1} for a "
            f"full-rank covariance of {stats.dim}-d features (recommended: 10000+). Pass "
            "allow_rank_deficient=True to compute a biased, non-comparable value anyway."
        )


def frechet_distance(
    stats_a: GaussianStats,
    stats_b: GaussianStats,
    *,
    allow_rank_deficient: bool = False,
    names: tuple[str, str] = ("reference", "generated"),
) -> float:
    """FID = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}), float64, in squared feature units.

    Raises InsufficientSamplesError (a ValueError) when a set has fewer than 2 samples, or
    fewer than d + 1 samples (rank-deficient covariance) unless ``allow_rank_deficient``.
    ``names`` label the two sets in error messages. Tiny negative values from round-off
    (identical sets) are clamped to 0.
    """
    if stats_a.dim != stats_b.dim:
        raise ValueError(f"feature dims differ: {stats_a.dim} vs {stats_b.dim}")
    _check_rank(stats_a, names[0], allow_rank_deficient)
    _check_rank(stats_b, names[1], allow_rank_deficient)
    diff = stats_a.mean - stats_b.mean
    cov_a, cov_b = stats_a.cov, stats_b.cov
    value = float(diff @ diff) + float(cov_a.trace() + cov_b.trace())
    value -= 2.0 * trace_sqrt_product(cov_a, cov_b)
    return max(value, 0.0)
