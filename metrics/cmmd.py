"""CMMD (Jayasumana et al., CVPR 2024): MMD between CLIP image-embedding distributions.

Embeddings are L2-normalised CLIP image embeddings. Kernel: Gaussian RBF

    k(x, y) = exp(-|x - y|^2 / (2 sigma^2)),  sigma = 10,

and CMMD = scale * MMD^2 with scale = 1000, computed in float64.

Estimator. The reference implementation (google-research/cmmd, ``distance.py``) averages each
kernel matrix over *all* entries including the diagonal,

    MMD^2 = mean(K_xx) + mean(K_yy) - 2 mean(K_xy)

(the V-statistic; the diagonal terms are exp(0) = 1, so it is biased upwards by about
(1/n_x + 1/n_y) scale * (1 - mean off-diagonal k)). ``estimator="reference"`` (default) reproduces
that code, so values are comparable with published CMMD numbers. ``estimator="unbiased"``
drops the diagonals (U-statistic, means over i != j), which is zero-mean for equal
distributions and is preferable when comparing small sets with each other.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

SIGMA = 10.0
SCALE = 1000.0


def _sq_dists(a: Tensor, b: Tensor) -> Tensor:
    # |a|^2 + |b|^2 - 2 a.b, as in the reference code (float64 keeps round-off ~1e-16).
    return (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T


def cmmd(
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    *,
    sigma: float = SIGMA,
    scale: float = SCALE,
    estimator: Literal["reference", "unbiased"] = "reference",
    normalize: bool = True,
) -> float:
    """CMMD between CLIP image embeddings x (n, d) and y (m, d).

    ``normalize=True`` L2-normalises rows first (CMMD is defined on unit embeddings; harmless
    when they already are). Raises ValueError for empty sets (or < 2 rows with "unbiased").
    """
    a = torch.as_tensor(x).detach().to("cpu", torch.float64)
    b = torch.as_tensor(y).detach().to("cpu", torch.float64)
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"expected (n, d) embeddings with equal d, got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    min_n = 2 if estimator == "unbiased" else 1
    if a.shape[0] < min_n or b.shape[0] < min_n:
        raise ValueError(
            f"CMMD ({estimator}) needs at least {min_n} embeddings per set, "
            f"got {a.shape[0]} and {b.shape[0]}"
        )
    if normalize:
        a = a / a.norm(dim=1, keepdim=True)
        b = b / b.norm(dim=1, keepdim=True)
    gamma = 1.0 / (2.0 * sigma**2)
    k_xx = torch.exp(-gamma * _sq_dists(a, a))
    k_yy = torch.exp(-gamma * _sq_dists(b, b))
    k_xy = torch.exp(-gamma * _sq_dists(a, b))
    if estimator == "reference":
        value = k_xx.mean() + k_yy.mean() - 2 * k_xy.mean()
    elif estimator == "unbiased":
        n, m = a.shape[0], b.shape[0]
        value = (
            (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
            + (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
            - 2 * k_xy.mean()
        )
    else:
        raise ValueError(f"estimator must be 'reference' or 'unbiased', got {estimator!r}")
    return float(scale * value)
