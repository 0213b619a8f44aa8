"""Specification of the criterion-2 candidates in bench/policy_experiments.py (no Django)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from bench.policy_experiments import (
    adjacent_priorities,
    horizon_priorities,
    kg_priorities,
    misorder_after,
    misorder_slope,
    sharp_priorities,
    warm_start,
)
from ratings.policies import PairVotes, balanced_priorities, uncertainty_priorities


@pytest.mark.parametrize(("h", "q"), [(0.0, 0.3), (0.4, 0.5), (1.2, 0.2), (2.0, 0.9)])
def test_the_expected_misorder_after_votes_is_the_sign_disagreement_of_truth_and_new_mean(h, q):
    # X: the true difference in posterior sd units, N(h, 1); Y: the mean after the votes,
    # N(h, q^2), cov(X, Y) = q^2 (Y = h + q Z1, X = Y + sqrt(1 - q^2) Z2).
    rng = np.random.default_rng(1)
    y = h + q * rng.standard_normal(400_000)
    x = y + np.sqrt(1 - q * q) * rng.standard_normal(y.size)
    monte_carlo = float((np.sign(x) != np.sign(y)).mean())
    assert misorder_after(h, q) == pytest.approx(monte_carlo, abs=3e-3)


def test_no_votes_leave_the_misorder_and_a_settled_pair_has_none():
    h = np.array([0.0, 0.5, 2.0])
    np.testing.assert_allclose(misorder_after(h, np.zeros(3)), ndtr(-h))
    np.testing.assert_allclose(misorder_after(h, np.ones(3)), 0.0)
    # More votes, less expected misorder.
    q = np.linspace(0.0, 1.0, 11)
    assert (np.diff(misorder_after(np.full(11, 0.7), q)) < 0).all()


def test_a_warm_start_is_balanced_until_its_votes_then_the_policy():
    policy = warm_start("uncertainty", 100)
    few = PairVotes(np.array([[0.0, 30], [20, 0]]), np.zeros((2, 2)))  # 50 votes
    many = PairVotes(np.array([[0.0, 70], [50, 0]]), np.zeros((2, 2)))  # 120 votes
    np.testing.assert_array_equal(policy(few).priority, balanced_priorities(few).priority)
    np.testing.assert_array_equal(policy(many).priority, uncertainty_priorities(many).priority)


@pytest.mark.parametrize(("d", "s2", "st2"), [(0.0, 0.2, 0.05), (0.3, 0.3, 0.1), (1.0, 0.5, 0.2)])
def test_the_misorder_slope_is_the_derivative_of_the_misorder_in_the_final_variance(d, s2, st2):
    def misorder(final):
        return misorder_after(abs(d) / np.sqrt(s2), np.sqrt((s2 - final) / s2))
    step = 1e-6
    numeric = (misorder(st2 + step) - misorder(st2 - step)) / (2 * step)
    assert misorder_slope(np.array(d), np.array(s2), np.array(st2)) == pytest.approx(numeric,
                                                                                     rel=1e-5)


def _close_pair_votes():
    rng = np.random.default_rng(2)
    truth = np.array([0.0, 3.0, 3.05, 6.0])  # runs 1 and 2 close, the others far apart
    wins = np.zeros((4, 4))
    for _ in range(600):
        a, b = rng.choice(4, 2, replace=False)
        winner, loser = (a, b) if rng.random() < 1 / (1 + np.exp(truth[b] - truth[a])) else (b, a)
        wins[winner, loser] += 1
    return PairVotes(wins, np.zeros((4, 4)))


@pytest.mark.parametrize("policy", [kg_priorities, horizon_priorities, sharp_priorities,
                                    adjacent_priorities])
def test_the_candidates_serve_a_tier_with_the_undecided_pair_and_leave_settled_ones(policy):
    pri = policy(_close_pair_votes())
    matrix = pri.matrix(4)
    assert (pri.priority == 1.0).sum() == 2  # n // 2 pairs share the top priority
    assert matrix[1, 2] == 1.0
    assert matrix[0, 3] < 0.5


def test_sharp_one_is_uncertainty_and_adjacent_keeps_to_neighbours_in_the_ranking():
    votes = _close_pair_votes()
    np.testing.assert_allclose(sharp_priorities(votes, k=1.0).priority,
                               uncertainty_priorities(votes).priority)
    pri = adjacent_priorities(votes, places=1)
    # Ranking 3 > 2 ~ 1 > 0: pairs one place apart are (0, 1) or (0, 2), (1, 2), (1 or 2, 3).
    for k in pri.top_tier:
        assert {int(pri.i[k]), int(pri.j[k])} != {0, 3}
