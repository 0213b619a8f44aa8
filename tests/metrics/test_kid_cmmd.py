"""KID (polynomial-kernel unbiased MMD^2) and CMMD (RBF MMD on CLIP embeddings)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metrics.cmmd import cmmd
from metrics.kid import kernel_inception_distance, mmd2_unbiased


def _numpy_unbiased_poly_mmd(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3  # noqa: E731
    m = x.shape[0]
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float(
        (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    )


def _numpy_cmmd_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Line-by-line numpy port of google-research/cmmd distance.py (sigma 10, scale 1000)."""
    x_sq = np.diag(x @ x.T)
    y_sq = np.diag(y @ y.T)
    gamma = 1 / (2 * 10**2)
    k_xx = np.mean(np.exp(-gamma * (-2 * x @ x.T + x_sq[:, None] + x_sq[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * x @ y.T + x_sq[:, None] + y_sq[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * y @ y.T + y_sq[:, None] + y_sq[None, :])))
    return 1000 * (k_xx + k_yy - 2 * k_xy)


def _unit_rows(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)) + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_mmd2_matches_a_direct_numpy_implementation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 16)), rng.normal(0.3, 1, size=(30, 16))
    got = float(mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y)))
    assert got == pytest.approx(_numpy_unbiased_poly_mmd(x, y), rel=1e-12)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 32)), rng.normal(size=(200, 32))
    shifted = rng.normal(0.5, 1, size=(200, 32))
    same = kernel_inception_distance(x, y, subsets=50, subset_size=100)
    diff = kernel_inception_distance(x, shifted, subsets=50, subset_size=100)
    assert same.std > 0  # subsets really differ
    assert abs(same.mean) < 3 * same.std
    assert diff.mean > 10 * (abs(same.mean) + same.std)


def test_kid_caps_the_subset_size_and_is_reproducible_from_its_seed():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(50, 8)), rng.normal(size=(40, 8))
    a = kernel_inception_distance(x, y, subsets=5, seed=3)
    b = kernel_inception_distance(x, y, subsets=5, seed=3)
    assert a.subset_size == 40
    assert a == b


def test_kid_refuses_fewer_than_two_images():
    with pytest.raises(ValueError, match="at least 2 images"):
        kernel_inception_distance(np.zeros((1, 4)), np.zeros((5, 4)))


def test_cmmd_reproduces_the_reference_implementation():
    x, y = _unit_rows(60, 32, seed=4), _unit_rows(50, 32, seed=5, shift=0.4)
    assert cmmd(x, y) == pytest.approx(_numpy_cmmd_reference(x, y), rel=1e-10)
    assert cmmd(x, x) == pytest.approx(0.0, abs=1e-9)


def test_cmmd_unbiased_estimator_drops_the_kernel_diagonals():
    x, y = _unit_rows(40, 16, seed=6), _unit_rows(30, 16, seed=7, shift=0.2)
    k = lambda a, b: np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / 200)  # noqa: E731
    kxx, kyy = k(x, x), k(y, y)
    expected = 1000 * (
        (kxx.sum() - 40) / (40 * 39) + (kyy.sum() - 30) / (30 * 29) - 2 * k(x, y).mean()
    )
    assert cmmd(x, y, estimator="unbiased") == pytest.approx(expected, rel=1e-9)


def test_cmmd_normalises_embeddings_and_rejects_empty_sets():
    x, y = _unit_rows(20, 8, seed=8), _unit_rows(20, 8, seed=9, shift=0.5)
    assert cmmd(3 * x, 0.5 * y) == pytest.approx(cmmd(x, y), rel=1e-12)
    with pytest.raises(ValueError, match="at least 1"):
        cmmd(np.zeros((0, 8)), y)
