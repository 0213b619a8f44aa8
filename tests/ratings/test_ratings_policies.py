"""Specification of the pair policies (ratings.policies): pure functions of the votes so far."""

from __future__ import annotations

import numpy as np
import pytest

from ratings import aggregate_cells, bootstrap_ratings, fit_bradley_terry, simulate_votes
from ratings.policies import (
    POLICIES,
    PairPriorities,
    PairVotes,
    active_priorities,
    balanced_priorities,
    best_probability_approx,
    bootstrap_intervals,
    bt_posterior,
    infogain_priorities,
    interval_overlap,
    order_gain,
    serve_pairs,
    thompson_priorities,
    tiered_priorities,
    top_priorities,
    uncertainty_priorities,
    uniform_pairs,
)


def _votes(truth, n_votes, seed=0, tie_rate=0.05):
    rng = np.random.default_rng(seed)
    v = simulate_votes(truth, n_votes, rng, tie_rate=tie_rate)
    cells = aggregate_cells(v.a, v.b, v.outcomes, len(truth))
    return cells, PairVotes.from_cells(cells)


def test_votes_round_trip_through_the_bootstrap_cells():
    cells, votes = _votes(np.array([900.0, 1000, 1100, 1050]), 300)
    back = votes.to_cells()
    assert np.array_equal(back.i, cells.i) and np.array_equal(back.j, cells.j)
    assert np.array_equal(back.counts, cells.counts)
    assert np.allclose(votes.bt_wins(), cells.to_wins())
    assert votes.games.sum() == 2 * 300


@pytest.mark.parametrize(("wins", "ties", "message"), [
    (np.zeros((2, 3)), np.zeros((2, 3)), "square"),
    (-np.ones((2, 2)), np.zeros((2, 2)), "non-negative"),
    (np.zeros((2, 2)), np.array([[0.0, 1.0], [0.0, 0.0]]), "symmetric"),
])
def test_malformed_votes_are_refused(wins, ties, message):
    with pytest.raises(ValueError, match=message):
        PairVotes(wins, ties)


def test_interval_overlap_is_one_for_nested_and_zero_for_disjoint_intervals():
    lower, upper = np.array([0.0, 1.0, 10.0]), np.array([5.0, 2.0, 12.0])
    assert interval_overlap(lower, upper, 0, 1) == 1.0
    assert interval_overlap(lower, upper, 0, 2) == 0.0
    assert interval_overlap(np.array([0.0, 3.0]), np.array([4.0, 5.0]), 0, 1) == 0.5


def test_active_priority_is_the_interval_overlap_over_one_plus_the_pair_votes():
    _, votes = _votes(np.array([800.0, 1000, 1010, 1200]), 400, seed=3)
    pri = active_priorities(votes, seed=7)
    lower, upper = bootstrap_intervals(votes, rounds=200, seed=7)
    games = votes.games
    for a, b, p in zip(pri.i, pri.j, pri.priority, strict=True):
        expected = interval_overlap(lower, upper, a, b) / (1 + games[a, b])
        assert p == pytest.approx(expected)
    # The two nearly equal runs are the least settled pair; the 400-Elo gap is settled.
    matrix = pri.matrix(4)
    assert matrix[1, 2] == pri.priority.max() > 0 and matrix[0, 3] == 0.0


def test_the_active_intervals_are_the_leaderboards_percentile_bootstrap():
    cells, votes = _votes(np.array([800.0, 1000, 1010, 1200]), 400, seed=4)
    lower, upper = bootstrap_intervals(votes, rounds=1000, seed=1)
    boot = bootstrap_ratings(cells, rounds=1000, seed=2, workers=1)
    width = boot.upper - boot.lower
    centre = boot.ratings - boot.ratings.mean()
    np.testing.assert_allclose(upper - lower, width, rtol=0.15)
    np.testing.assert_allclose((upper + lower) / 2, centre, atol=0.15 * width.max())


def test_active_on_a_stack_answers_each_campaign():
    (_, one), (_, two) = (_votes(np.array([800.0, 1000, 1010, 1200]), 400, seed=s)
                          for s in (5, 6))
    stack = PairVotes(np.stack([one.wins, two.wins, 0 * one.wins]),
                      np.stack([one.ties, two.ties, 0 * one.ties]))
    pri = active_priorities(stack, seed=0)
    assert pri.priority.shape == (3, 6)
    for r in range(2):
        matrix = PairPriorities(pri.i, pri.j, pri.priority[r]).matrix(4)
        assert matrix[1, 2] == pri.priority[r].max() and matrix[0, 3] == 0.0
    assert set(pri.priority[2]) == {1.0}


def test_without_votes_active_gives_every_pair_top_priority_and_balanced_gives_zero():
    empty = PairVotes.empty(4)
    assert set(active_priorities(empty).priority) == {1.0}
    assert set(balanced_priorities(empty).priority) == {0.0}
    assert len(active_priorities(empty).top_tier) == 6


def test_serving_with_one_task_per_pair_is_round_robin():
    pri = balanced_priorities(PairVotes.empty(5))
    rng = np.random.default_rng(0)
    served = serve_pairs(pri, np.zeros(10), 30, rng, tasks_per_pair=1)
    assert np.array_equal(np.bincount(served, minlength=10), np.full(10, 3))
    # Every block of 10 votes covers all 10 pairs: one judgment per task before a second.
    assert all(len(set(served[k:k + 10].tolist())) == 10 for k in (0, 10, 20))


def test_serving_takes_the_top_tier_and_its_least_judged_tasks_first():
    pri = PairPriorities.from_matrix(np.array([[0, 1.0, 1.0], [1.0, 0, 0.5], [1.0, 0.5, 0]]))
    rng = np.random.default_rng(1)
    # Pairs in triu order: (0,1) top, (0,2) top, (1,2) lower. (0,1) has both its tasks judged.
    served = serve_pairs(pri, [2, 0, 0], 2, rng, tasks_per_pair=2)
    assert served.tolist() == [1, 1]
    # With many tasks per pair, the tier is shared about evenly and the lower pair never served.
    many = serve_pairs(pri, [0, 0, 0], 2000, rng, tasks_per_pair=1000)
    share = np.bincount(many, minlength=3) / 2000
    assert share[2] == 0 and abs(share[0] - 0.5) < 0.05


def test_uniform_pairs_cover_every_pair_about_equally():
    picks = uniform_pairs(6, 6000, np.random.default_rng(2))
    assert picks.min() == 0 and picks.max() == 5
    assert np.all(np.abs(np.bincount(picks) / 6000 - 1 / 6) < 0.03)


def test_the_posterior_mode_is_the_prior_regularised_fit_and_its_spread_matches_the_bootstrap():
    cells, votes = _votes(np.array([900.0, 950, 1000, 1050, 1100]), 3000, seed=5)
    post = bt_posterior(votes)
    assert np.allclose(post.beta, fit_bradley_terry(votes.bt_wins(), prior=1.0).beta)
    boot = bootstrap_ratings(cells, rounds=400, seed=1)
    # Standard error of a rating relative to the mean: Laplace against bootstrap, within 15 %.
    centre = np.eye(5) - 1 / 5
    laplace_se = np.sqrt(np.diag(centre @ post.cov @ centre)) * 400 / np.log(10)
    assert np.allclose(laplace_se, boot.std, rtol=0.15)


def test_uncertainty_serves_the_undecided_pairs_and_spreads_them_over_a_tier():
    # Runs 1 and 2 are equal, everything else is far apart: their pair is the most informative.
    _, votes = _votes(np.array([600.0, 1000, 1000, 1400, 1800, 2200]), 600, seed=4,
                      tie_rate=0.0)
    pri = uncertainty_priorities(votes)
    assert len(pri.top_tier) == 3  # default tier: n // 2 pairs share the top priority
    top_pairs = {(int(pri.i[k]), int(pri.j[k])) for k in pri.top_tier}
    assert (1, 2) in top_pairs
    assert pri.matrix(6)[0, 5] < 0.01  # 1600 Elo apart: nothing left to learn about the order


def test_a_tier_of_the_best_scored_pairs_shares_the_top_priority_and_the_rest_follow_the_score():
    score = np.array([[0.0, 4.0, 1.0, 2.0],
                      [4.0, 0.0, 8.0, 0.5],
                      [1.0, 8.0, 0.0, 3.0],
                      [2.0, 0.5, 3.0, 0.0]])
    pri = tiered_priorities(score, 2)
    matrix = pri.matrix(4)
    assert matrix[1, 2] == matrix[0, 1] == 1.0  # the two best pairs (8 and 4)
    # Below the tier, priority 0.999 * score / max score: served only after the tier.
    assert matrix[2, 3] == pytest.approx(0.999 * 3 / 8)
    assert matrix[1, 3] == pytest.approx(0.999 * 0.5 / 8)
    stacked = tiered_priorities(np.stack([score, score[::-1, ::-1]]), 2)
    assert np.array_equal(stacked.priority[0], pri.priority)


def test_the_order_gain_is_largest_for_an_undecided_pair_and_vanishes_for_a_settled_one():
    _, votes = _votes(np.array([600.0, 1000, 1000, 1400, 1800, 2200]), 600, seed=4,
                      tie_rate=0.0)
    gain = order_gain(bt_posterior(votes))
    assert np.allclose(gain, gain.T) and (np.diag(gain) == 0).all()
    assert gain[1, 2] == pytest.approx(gain.max())  # the two equal runs
    assert gain[0, 5] < 1e-3 * gain[1, 2]  # 1600 Elo apart


def test_top_focuses_on_the_contenders_for_first_place():
    truth = np.array([1000.0, 1080, 700, 700, 700, 700, 700, 700])
    _, votes = _votes(truth, 800, seed=6)
    pri = top_priorities(votes, seed=0, tier=1)
    best = int(pri.top_tier[0])
    assert (int(pri.i[best]), int(pri.j[best])) == (0, 1)
    unc = uncertainty_priorities(votes, tier=1)
    # The order-only policy prefers some pair of the crowded bottom runs instead.
    assert (int(unc.i[unc.top_tier[0]]), int(unc.j[unc.top_tier[0]])) != (0, 1)


def test_every_named_policy_returns_one_priority_per_pair():
    _, votes = _votes(np.linspace(900, 1100, 5), 200, seed=8)
    for name, policy in POLICIES.items():
        pri = policy(votes, seed=1)
        assert pri.priority.shape == (10,) and np.isfinite(pri.priority).all(), name


def test_a_stack_of_campaigns_gets_the_priorities_of_each_campaign():
    stack = [_votes(np.linspace(800, 1200, 6), 150 + 50 * k, seed=k)[1] for k in range(3)]
    stacked = PairVotes(np.stack([v.wins for v in stack]), np.stack([v.ties for v in stack]))
    together = uncertainty_priorities(stacked)
    for k, votes in enumerate(stack):
        assert np.allclose(together.priority[k], uncertainty_priorities(votes).priority)
    assert top_priorities(stacked, seed=0).priority.shape == (3, 15)
    served = serve_pairs(balanced_priorities(stacked), np.zeros((3, 15)), 15,
                         np.random.default_rng(0), tasks_per_pair=1)
    assert all(sorted(row.tolist()) == list(range(15)) for row in served)


def test_infogain_first_tier_is_a_matching_of_the_runs():
    pri = infogain_priorities(PairVotes.empty(6))
    tier = pri.top_tier
    runs = np.concatenate([pri.i[tier], pri.j[tier]])
    assert len(tier) == 3 and len(set(runs.tolist())) == 6


def test_infogain_leaves_settled_pairs_and_serves_the_undecided_ones():
    _, votes = _votes(np.array([700.0, 1000, 1010, 1300]), 400, seed=8)
    pri = infogain_priorities(votes)
    matrix = pri.matrix(4)
    assert matrix[1, 2] == 1.0  # 10 Elo apart: undecided, in the tier
    assert matrix[0, 3] < 0.5  # 600 Elo apart: settled
    assert ((pri.priority == 1.0).sum()) == 2


def test_infogain_on_a_stack_answers_as_each_campaign_alone():
    _, one = _votes(np.array([800.0, 1000, 1010, 1200]), 300, seed=9)
    _, two = _votes(np.array([1000.0, 900, 1300, 1200]), 300, seed=10)
    stack = PairVotes(np.stack([one.wins, two.wins]), np.stack([one.ties, two.ties]))
    both = infogain_priorities(stack)
    for r, single in enumerate((one, two)):
        np.testing.assert_allclose(both.priority[r], infogain_priorities(single).priority,
                                   atol=1e-6)


def test_the_best_probability_approximation_finds_a_clear_leader():
    _, votes = _votes(np.array([1400.0, 1000, 1010, 990]), 400, seed=11)
    pi = best_probability_approx(bt_posterior(votes))
    assert pi.sum() == pytest.approx(1.0) and pi.argmax() == 0 and pi[0] > 0.9


def test_thompson_serves_at_most_its_duels_and_nothing_else():
    pri = thompson_priorities(PairVotes.empty(8), seed=3, draws=4)
    assert set(np.unique(pri.priority).tolist()) == {0.0, 1.0}
    assert 1 <= len(pri.top_tier) <= 4


def test_thompson_pits_the_likely_best_runs_against_each_other():
    # Runs 0 and 1 are 20 Elo apart at the top; the rest are hundreds of Elo below.
    _, votes = _votes(np.array([1400.0, 1380, 1000, 990, 980, 970]), 600, seed=12)
    pri = thompson_priorities(votes, seed=5, draws=20)
    tier = pri.top_tier
    duels = {(int(pri.i[k]), int(pri.j[k])) for k in tier}
    assert (0, 1) in duels
    # No duel between two of the hopeless runs.
    assert all(a in (0, 1) or b in (0, 1) for a, b in duels)


def test_thompson_is_reproducible_for_the_same_votes_and_seed():
    _, votes = _votes(np.linspace(900, 1100, 10), 100, seed=13)
    first = thompson_priorities(votes, seed=7)
    assert np.array_equal(first.priority, thompson_priorities(votes, seed=7).priority)
    others = [thompson_priorities(votes, seed=s).priority for s in (8, 9, 10)]
    assert any(not np.array_equal(first.priority, o) for o in others)


def test_thompson_on_a_stack_answers_per_campaign():
    _, one = _votes(np.array([1400.0, 1380, 900, 880]), 400, seed=14)
    _, two = _votes(np.array([900.0, 880, 1400, 1380]), 400, seed=15)
    stack = PairVotes(np.stack([one.wins, two.wins]), np.stack([one.ties, two.ties]))
    pri = thompson_priorities(stack, seed=1, draws=20)
    assert pri.priority.shape == (2, 6)
    # Each campaign's duels involve its own leaders (pair (0, 1) is index 0, (2, 3) index 5).
    assert pri.priority[0, 0] == 1.0 and pri.priority[1, 5] == 1.0
