"""Specification of ranks, rank intervals and win-rate matrices (ratings.ranking)."""

from __future__ import annotations

import numpy as np
import pytest

from ratings import (
    aggregate_cells,
    bootstrap_ranks,
    bootstrap_ratings,
    observed_win_rates,
    predicted_win_rates,
    rank_intervals,
    rank_with_confidence,
    simulate_votes,
)


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


def test_bootstrap_ranks_count_the_runs_rated_higher_in_each_round():
    samples = np.array([[1100.0, 1000.0, 900.0],
                        [1000.0, 1100.0, 900.0],
                        [1000.0, 1000.0, 1000.0]])  # a three-way tie shares rank 1
    np.testing.assert_array_equal(bootstrap_ranks(samples), [[1, 2, 3], [2, 1, 3], [1, 1, 1]])


def test_bootstrap_ranks_equal_the_definition_on_random_rounds():
    rng = np.random.default_rng(7)
    samples = rng.normal(1000.0, 50.0, (300, 12)).round(-1)  # rounding makes ties common
    by_definition = 1 + (samples[:, None, :] > samples[:, :, None]).sum(axis=2)
    np.testing.assert_array_equal(bootstrap_ranks(samples), by_definition)


def test_rank_interval_is_the_floor_and_ceil_of_rank_percentiles():
    # Run 0 is first in 90 rounds and second in 10: its 2.5 % rank is 1 and 97.5 % rank is 2.
    first = np.tile([1100.0, 1000.0, 900.0], (90, 1))
    swapped = np.tile([1000.0, 1100.0, 900.0], (10, 1))
    ci = rank_intervals(np.vstack([first, swapped]))
    np.testing.assert_array_equal(ci.low, [1, 1, 3])
    np.testing.assert_array_equal(ci.high, [2, 2, 3])
    assert ci.percentiles == (2.5, 97.5)
    # A 15-85 % interval leaves out the 10 % of rounds where runs 0 and 1 swap places.
    narrow = rank_intervals(np.vstack([first, swapped]), percentiles=(15.0, 85.0))
    np.testing.assert_array_equal(narrow.low, [1, 2, 3])
    np.testing.assert_array_equal(narrow.high, [1, 2, 3])


def test_rank_intervals_of_a_bootstrap_contain_the_true_order():
    rng = np.random.default_rng(3)
    truth = np.array([1300.0, 1100.0, 1000.0, 990.0, 700.0])
    v = simulate_votes(truth, 4000, rng)
    boot = bootstrap_ratings(aggregate_cells(v.a, v.b, v.outcomes, 5), rounds=300, seed=0)
    ci = rank_intervals(boot.samples)
    assert (ci.low <= ci.high).all()
    np.testing.assert_array_equal(ci.low <= np.arange(1, 6), True)
    np.testing.assert_array_equal(np.arange(1, 6) <= ci.high, True)
    assert (ci.low[0], ci.high[0]) == (1, 1) and (ci.low[4], ci.high[4]) == (5, 5)
    assert ci.low[2] < ci.high[2]  # two runs 10 Elo apart swap places across rounds


def test_rank_intervals_need_a_round():
    with pytest.raises(ValueError):
        rank_intervals(np.zeros((0, 3)))
