"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with a cubic kernel.

Kernel, on d-dimensional features:  k(x, y) = (x . y / d + 1)^3.

For each of ``subsets`` rounds, draw ``m`` real and ``m`` fake feature rows without replacement
and compute the unbiased estimator

    MMD^2_u = [sum_{i!=j} k(x_i,x_j) + sum_{i!=j} k(y_i,y_j)] / (m (m-1))
              - 2 sum_{i,j} k(x_i,y_j) / m^2

KID is the mean over rounds; the reported std is the population std (``unbiased=False``) of the
per-round values, as torchmetrics reports it. Units: squared feature units (often shown x1000).

Subsets: round r draws ``torch.randperm(n_real)`` then ``torch.randperm(n_fake)`` from a
``torch.Generator`` seeded with ``seed``, keeping the first m indices: the exact sequence
torchmetrics' ``KernelInceptionDistance.compute()`` consumes from the global RNG after
``torch.manual_seed(seed)``, so both agree on the same subsets. Unlike torchmetrics,
``subset_size`` is capped at min(n_real, n_fake) instead of raising.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class KIDResult:
    """KID mean and population std over subsets, plus the subset parameters actually used."""

    mean: float
    std: float
    subsets: int
    subset_size: int


def polynomial_kernel(x: Tensor, y: Tensor, degree: int = 3, coef: float = 1.0) -> Tensor:
    """k(x, y) = (x . y / d + coef)^degree for all row pairs; (n, m) matrix."""
    return (x @ y.T / x.shape[1] + coef) ** degree


def mmd2_unbiased(x: Tensor, y: Tensor, degree: int = 3, coef: float = 1.0) -> Tensor:
    """Unbiased MMD^2 between equal-sized samples x, y (m, d) under the polynomial kernel."""
    m = x.shape[0]
    k_xx = polynomial_kernel(x, x, degree, coef)
    k_yy = polynomial_kernel(y, y, degree, coef)
    k_xy = polynomial_kernel(x, y, degree, coef)
    sum_xx = k_xx.sum() - k_xx.diagonal().sum()
    sum_yy = k_yy.sum() - k_yy.diagonal().sum()
    return (sum_xx + sum_yy) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m)


def kernel_inception_distance(
    real: Tensor | np.ndarray,
    fake: Tensor | np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    coef: float = 1.0,
    seed: int = 0,
) -> KIDResult:
    """KID between real (n_r, d) and fake (n_f, d) features; float64 arithmetic.

    Raises ValueError when either set has fewer than 2 rows or the dims differ.
    """
    x = torch.as_tensor(real).detach().to("cpu", torch.float64)
    y = torch.as_tensor(fake).detach().to("cpu", torch.float64)
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"expected (n, d) features with equal d, got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    n_r, n_f = x.shape[0], y.shape[0]
    if min(n_r, n_f) < 2:
        raise ValueError(f"KID needs at least 2 images per set, got {n_r} real and {n_f} fake")
    m = min(subset_size, n_r, n_f)
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        # Same draw order as torchmetrics: real permutation, then fake permutation.
        idx_r = torch.randperm(n_r, generator=gen)[:m]
        idx_f = torch.randperm(n_f, generator=gen)[:m]
        values.append(mmd2_unbiased(x[idx_r], y[idx_f], degree, coef))
    v = torch.stack(values)
    return KIDResult(
        mean=float(v.mean()), std=float(v.std(unbiased=False)), subsets=subsets, subset_size=m
    )
