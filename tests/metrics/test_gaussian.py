"""GaussianStats accumulation/merging and the Fréchet distance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torchmetrics.image.fid import _compute_fid

from metrics.gaussian import (
    GaussianStats,
    InsufficientSamplesError,
    frechet_distance,
    trace_sqrt_product,
)


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mix + shift + 0.5


def _fid_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """Textbook FID with scipy's sqrtm (pytorch-fid style), for well-conditioned inputs."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * covmean))


def test_mean_and_unbiased_covariance_match_numpy():
    x = _features(200, 16, seed=0)
    stats = GaussianStats.from_features(torch.from_numpy(x))
    np.testing.assert_allclose(stats.mean.numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov.numpy(), np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)


def test_fid_matches_scipy_sqrtm_on_full_rank_covariances():
    a, b = _features(400, 32, seed=1), _features(300, 32, seed=2, shift=0.3)
    ours = frechet_distance(GaussianStats.from_features(a), GaussianStats.from_features(b))
    assert ours == pytest.approx(_fid_scipy(a, b), rel=1e-8)


def test_merged_shards_give_the_same_fid_as_one_pass():
    a, b = _features(500, 24, seed=3), _features(450, 24, seed=4, shift=0.1)
    one_pass = frechet_distance(GaussianStats.from_features(a), GaussianStats.from_features(b))
    shards = [GaussianStats.from_features(part) for part in np.array_split(a, 7)]
    merged = shards[0]
    for shard in shards[1:]:
        # Partials travel through the database as bytes.
        merged = merged.merge(GaussianStats.from_bytes(shard.to_bytes()))
    assert merged.n == 500
    assert frechet_distance(merged, GaussianStats.from_features(b)) == pytest.approx(
        one_pass, rel=1e-9
    )


def test_bytes_roundtrip_is_exact():
    stats = GaussianStats.from_features(_features(50, 8, seed=5))
    back = GaussianStats.from_bytes(stats.to_bytes())
    assert back.n == stats.n and back.dim == stats.dim
    assert torch.equal(back.sum, stats.sum) and torch.equal(back.outer, stats.outer)


def test_fid_of_a_set_against_itself_is_zero():
    x = _features(300, 32, seed=6)
    s = GaussianStats.from_features(x)
    assert frechet_distance(s, s) == pytest.approx(0.0, abs=1e-9 * float(s.cov.trace()))


def test_trace_sqrt_is_stable_on_near_singular_covariances():
    # Shared eigenbasis => Tr((S_a S_b)^1/2) = sum sqrt(l_a * l_b) exactly. Eigenvalues span
    # 1 .. 1e-14 and include exact zeros, which makes sqrtm of S_a S_b ill-conditioned.
    d = 64
    q, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(d, d)))
    la = np.logspace(0, -14, d)
    la[-5:] = 0.0
    s_a = (q * la) @ q.T
    for lb in (np.logspace(0, -14, d) * 3, np.logspace(-14, 0, d) * 3):  # aligned, opposed
        s_b = (q * lb) @ q.T
        expected = np.sqrt(la * lb).sum()
        got = trace_sqrt_product(torch.from_numpy(s_a), torch.from_numpy(s_b))
        assert np.isfinite(got)
        # Error relative to the scale FID works at (the traces), i.e. what FID would see.
        assert abs(got - expected) < 1e-7 * (la.sum() + lb.sum())


def test_rank_deficient_fid_matches_torchmetrics_formula_when_allowed():
    # 40 samples of 256-d features: rank-39 covariances; torchmetrics computes
    # eigvals(S_a S_b) directly, we go through the symmetric S_a^1/2 S_b S_a^1/2.
    a, b = _features(40, 256, seed=8), _features(40, 256, seed=9, shift=0.2)
    sa, sb = GaussianStats.from_features(a), GaussianStats.from_features(b)
    ours = frechet_distance(sa, sb, allow_rank_deficient=True)
    theirs = float(_compute_fid(sa.mean, sa.cov, sb.mean, sb.cov))
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_too_few_reference_images_is_an_error_that_says_what_is_needed():
    ref = GaussianStats.from_features(np.tile(_features(300, 256, seed=10), (1, 8)))
    gen = GaussianStats.from_features(np.tile(_features(3000, 256, seed=11), (1, 8)))
    with pytest.raises(InsufficientSamplesError) as err:
        frechet_distance(ref, gen)
    msg = str(err.value)
    assert "reference set has 300 images" in msg
    assert "at least 2049" in msg and "full-rank" in msg and "allow_rank_deficient" in msg


def test_fewer_than_two_images_is_an_error_even_when_rank_deficiency_is_allowed():
    one = GaussianStats.from_features(_features(1, 4, seed=12))
    empty = GaussianStats(dim=4)
    many = GaussianStats.from_features(_features(10, 4, seed=13))
    for bad, count in ((one, "1 image"), (empty, "0 image")):
        with pytest.raises(ValueError, match=f"generated set has {count}"):
            frechet_distance(many, bad, allow_rank_deficient=True)


def test_update_rejects_wrong_feature_dimension():
    with pytest.raises(ValueError, match=r"\(n, 8\)"):
        GaussianStats(dim=8).update(torch.zeros(3, 9))
