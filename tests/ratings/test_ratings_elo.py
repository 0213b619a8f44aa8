"""Specification of the online Elo live view (ratings.elo)."""

from __future__ import annotations

import numpy as np
import pytest

from ratings import online_elo


def test_hand_computed_sequence():
    # K = 32, start 1000/1000.
    # 1) A beats B: E_A = 0.5, delta = 32 * 0.5 = 16 -> A 1016, B 984.
    # 2) B beats A: E_B = 1 / (1 + 10^(32/400)) = 1 / 2.2022644 = 0.4540781,
    #    delta = 32 * (1 - 0.4540781) = 17.4695015 -> A 998.5304985, B 1001.4695015.
    # 3) tie: E_A = 1 / (1 + 10^(2.939003/400)) = 0.4957705,
    #    delta = 32 * (0.5 - 0.4957705) = 0.1353428 -> A 998.6658413, B 1001.3341587.
    res = online_elo([0, 0, 1], [1, 1, 0], ["a", "b", "tie"], 2, k=32)
    np.testing.assert_allclose(res.ratings, [998.6658413, 1001.3341587], atol=1e-6)
    np.testing.assert_array_equal(res.games, [3, 3])


def test_parameters_scale_and_initial():
    res = online_elo([0], [1], ["a"], 2, k=10, initial=1500)
    np.testing.assert_allclose(res.ratings, [1505, 1495])


def test_zero_sum_and_order_dependence():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 2000)
    b = (a + rng.integers(1, 5, 2000)) % 5
    o = rng.choice(["a", "b", "tie", "both_bad"], 2000)
    res = online_elo(a, b, o, 5)
    # Every update moves the same number of points from one run to the other.
    assert res.ratings.sum() == pytest.approx(5000.0)
    # Elo depends on the order of the votes (which is why the leaderboard uses BT).
    rev = online_elo(a[::-1], b[::-1], o[::-1], 5)
    assert np.abs(rev.ratings - res.ratings).max() > 1.0


def test_both_bad_drop_equals_removing_those_votes():
    a, b, o = [0, 1, 0, 2], [1, 2, 2, 1], ["a", "both_bad", "b", "tie"]
    dropped = online_elo(a, b, o, 3, both_bad="drop")
    manual = online_elo([0, 0, 2], [1, 2, 1], ["a", "b", "tie"], 3)
    np.testing.assert_allclose(dropped.ratings, manual.ratings)
