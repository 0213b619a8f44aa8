"""Specification of ranks and win-rate matrices (ratings.ranking)."""

from __future__ import annotations

import numpy as np

from ratings import observed_win_rates, predicted_win_rates, rank_with_confidence


def test_rank_counts_runs_whose_whole_interval_is_above():
    lower = np.array([1050.0, 1030.0, 990.0, 900.0])
    upper = np.array([1100.0, 1060.0, 1040.0, 950.0])
    # Run 0: nobody's lower bound exceeds 1100 -> rank 1.
    # Run 1: 1050 > 1060? no -> rank 1 (overlaps with run 0).
    # Run 2: 1050 > 1040 -> one run above -> rank 2.
    # Run 3: lowers 1050, 1030, 990 all > 950 -> rank 4.
    np.testing.assert_array_equal(rank_with_confidence(lower, upper), [1, 1, 2, 4])


def test_observed_win_rates_are_nan_where_no_games():
    wins = np.array([[0.0, 3.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    rate = observed_win_rates(wins)
    assert rate[0, 1] == 0.75 and rate[1, 0] == 0.25
    assert np.isnan(rate[0, 2]) and np.isnan(rate[1, 1])


def test_predicted_win_rates_follow_the_elo_formula():
    p = predicted_win_rates([1400.0, 1000.0, 1000.0])
    assert np.isclose(p[0, 1], 10 / 11)  # 400 points = 10:1 odds
    assert np.isclose(p[1, 2], 0.5)
    np.testing.assert_allclose(p + p.T, 1.0)
