"""Specification of the anytime-valid A/B test (ratings.sequential)."""

from __future__ import annotations

import numpy as np
import pytest

from ratings import always_valid_p_path, sequential_ab_test

PATHS = 2000
VOTES = 1000
ALPHA = 0.05
# Monte-Carlo slack: with 2000 paths the estimated rejection rate has SE
# sqrt(0.05 * 0.95 / 2000) = 0.0049 if the true rate were exactly alpha; 3 SE = 0.015.
SLACK = 3 * np.sqrt(ALPHA * (1 - ALPHA) / PATHS)


def _scores(rng, p_b, tie_rate=0.0):
    """B's score per vote: 1 win, 0 loss, 0.5 tie."""
    u = rng.random((PATHS, VOTES))
    s = (rng.random((PATHS, VOTES)) < p_b).astype(float)
    s[u < tie_rate] = 0.5
    return s


def test_hand_computed_ten_straight_wins():
    # E = B(1 + 10, 1) / B(1, 1) * 2^10 = 1024 / 11 = 93.09 -> p = 11 / 1024.
    res = sequential_ab_test(10, 0)
    assert res.always_valid_p == pytest.approx(11 / 1024)
    # Posterior Beta(11, 1): P(p > 1/2) = 1 - 0.5^11.
    assert res.p_b_better == pytest.approx(1 - 0.5**11)
    assert res.decision == "b_better"
    assert res.message.startswith("B beats A with probability 1.00 after 10 votes")
    assert sequential_ab_test(0, 10).decision == "a_better"


def test_few_votes_say_keep_rating():
    res = sequential_ab_test(6, 4, 2)
    assert res.decision == "keep_rating"
    assert res.n == 12
    assert 0.5 < res.p_b_better < 0.9
    assert "keep rating" in res.message


def test_false_positive_rate_under_continuous_monitoring_stays_within_alpha():
    rng = np.random.default_rng(0)
    scores = _scores(rng, 0.5)
    p = always_valid_p_path(scores)
    # Looking after every single vote and stopping at the first p <= alpha:
    rejected = (p <= ALPHA).any(axis=1).mean()
    assert rejected <= ALPHA + SLACK, rejected

    # For contrast, a naive fixed-sample z-test applied after every vote (n >= 10) rejects a
    # true null far more often than alpha: the reason the always-valid p-value exists.
    s = np.cumsum(scores, axis=1)
    n = np.arange(1, VOTES + 1)
    z = np.abs(s - n / 2) / np.sqrt(n / 4)
    naive = (z[:, 9:] > 1.96).any(axis=1).mean()
    assert naive > 3 * ALPHA, naive


def test_false_positive_rate_with_many_ties_split_is_still_valid():
    rng = np.random.default_rng(1)
    p = always_valid_p_path(_scores(rng, 0.5, tie_rate=0.4))
    assert (p <= ALPHA).any(axis=1).mean() <= ALPHA + SLACK


def test_power_a_clearly_better_run_is_detected():
    rng = np.random.default_rng(2)
    scores = _scores(rng, 0.65, tie_rate=0.1)
    p = always_valid_p_path(scores)
    detected = p[:, -1] <= ALPHA
    assert detected.mean() > 0.99
    # Detection points the right way, and typically long before 1000 votes.
    first = np.argmax(p <= ALPHA, axis=1)
    assert np.median(first) < 400
    final = sequential_ab_test(scores[0].sum(), (1 - scores[0]).sum())
    assert final.decision == "b_better"


def test_path_p_value_is_monotone_and_matches_the_one_shot_test_at_a_new_maximum():
    x = np.array([1, 1, 0, 1, 1, 1, 0.5, 1, 1, 1], dtype=float)
    path = always_valid_p_path(x)
    assert (np.diff(path) <= 1e-15).all()
    one_shot = sequential_ab_test(x.sum(), (1 - x).sum(), tie_handling="split")
    assert one_shot.always_valid_p == pytest.approx(path[-1])
