"""Specification of the Bradley-Terry fit (ratings.bradley_terry)."""

from __future__ import annotations

import numpy as np
import pytest

from ratings import (
    ELO_PER_NAT,
    aggregate_cells,
    aggregate_counts,
    bootstrap_ratings,
    fit_bradley_terry,
    fit_bradley_terry_batch,
    predicted_win_rates,
    simulate_votes,
)

from .helpers import centred, logistic_regression_elo

TRUE_ELO = np.array([820.0, 900.0, 960.0, 1000.0, 1010.0, 1060.0, 1120.0, 1130.0])


def test_recovers_known_strengths_from_simulated_votes():
    rng = np.random.default_rng(2024)
    v = simulate_votes(TRUE_ELO, 20_000, rng, tie_rate=0.1)
    cells = aggregate_cells(v.a, v.b, v.outcomes, TRUE_ELO.size)
    boot = bootstrap_ratings(cells, rounds=400, seed=1)
    fit = boot.point
    assert fit.converged and fit.mle_exists and fit.warnings == []
    err = fit.ratings - centred(TRUE_ELO)
    # Each run plays ~5,000 games, so the standard error is ~5 Elo; every run must be within
    # 4 bootstrap standard errors of the truth (a 1-in-15,000 event per run if unbiased) ...
    assert (np.abs(err) < 4 * boot.std).all(), (err, boot.std)
    # ... which, in absolute terms, is "within a few Elo".
    assert np.abs(err).max() < 20
    assert abs(err.mean()) < 1e-9  # both are anchored at mean 1000


def test_anchor_run_pins_that_run_and_keeps_differences():
    rng = np.random.default_rng(7)
    v = simulate_votes(TRUE_ELO, 5000, rng)
    wins = aggregate_counts(v.a, v.b, v.outcomes, TRUE_ELO.size)
    by_mean = fit_bradley_terry(wins)
    by_run = fit_bradley_terry(wins, anchor=3, anchor_rating=1200)
    assert by_run.ratings[3] == pytest.approx(1200)
    np.testing.assert_allclose(
        by_run.ratings - by_run.ratings[0], by_mean.ratings - by_mean.ratings[0], atol=1e-9
    )


def test_matches_independent_logistic_regression_within_half_an_elo_point():
    rng = np.random.default_rng(11)
    true = TRUE_ELO[:6]
    v = simulate_votes(true, 3000, rng, tie_rate=0.15, both_bad_share=0.3)
    ours = fit_bradley_terry(aggregate_counts(v.a, v.b, v.outcomes, true.size))
    lr = logistic_regression_elo(v.a, v.b, v.outcomes, true.size)
    assert np.abs(ours.ratings - lr).max() < 0.5


def test_point_estimate_satisfies_the_likelihood_equations():
    # At the MLE, expected wins equal observed wins for every run (score equations).
    rng = np.random.default_rng(5)
    v = simulate_votes(TRUE_ELO, 4000, rng, tie_rate=0.1)
    wins = aggregate_counts(v.a, v.b, v.outcomes, TRUE_ELO.size)
    fit = fit_bradley_terry(wins)
    expected_wins = ((wins + wins.T) * predicted_win_rates(fit.ratings)).sum(axis=1)
    np.testing.assert_allclose(expected_wins, wins.sum(axis=1), atol=1e-6)


def test_batch_fit_equals_individual_fits_and_warm_start_is_harmless():
    rng = np.random.default_rng(9)
    votes = [simulate_votes(TRUE_ELO, 3000, rng) for _ in range(5)]
    mats = np.stack([aggregate_counts(v.a, v.b, v.outcomes, 8) for v in votes])
    batch = fit_bradley_terry_batch(mats, init=np.linspace(-1, 1, 8))
    assert batch.converged.all()
    for k in range(5):
        single = fit_bradley_terry(mats[k])
        got = ELO_PER_NAT * (batch.beta[k] - batch.beta[k].mean()) + 1000
        np.testing.assert_allclose(got, single.ratings, atol=1e-6)


# --- data on which the plain MLE does not exist --------------------------------------------


def _wins(n, games):
    """Win matrix from (winner, loser, count) triples."""
    w = np.zeros((n, n))
    for i, j, c in games:
        w[i, j] += c
    return w


def _assert_finite_and_converged(fit):
    assert np.isfinite(fit.ratings).all()
    assert fit.converged


def test_run_with_no_wins_is_reported_not_diverged():
    w = _wins(3, [(0, 1, 5), (1, 0, 4), (0, 2, 6), (1, 2, 7)])  # run 2 never wins
    fit = fit_bradley_terry(w)
    _assert_finite_and_converged(fit)
    assert not fit.mle_exists and fit.prior > 0
    assert any("[2] never won" in m for m in fit.warnings)
    assert any("pseudo-count" in m for m in fit.warnings)
    assert fit.ratings[2] < fit.ratings[1] < fit.ratings[0]


def test_run_that_never_lost_is_reported():
    w = _wins(3, [(0, 1, 5), (0, 2, 3), (1, 2, 2), (2, 1, 2)])
    fit = fit_bradley_terry(w)
    _assert_finite_and_converged(fit)
    assert any("[0] never lost" in m for m in fit.warnings)
    assert fit.ratings[0] == fit.ratings.max()


def test_run_with_no_games_sits_at_the_prior_centre():
    w = _wins(4, [(0, 1, 5), (1, 0, 3), (1, 2, 4), (2, 1, 4), (0, 2, 2), (2, 0, 1)])
    fit = fit_bradley_terry(w)
    _assert_finite_and_converged(fit)
    assert any("[3] have no games" in m for m in fit.warnings)
    assert fit.components == [[0, 1, 2], [3]]
    # The prior pulls an isolated run to the reference; with mean anchoring it stays mid-table.
    assert fit.ratings[2] < fit.ratings[3] < fit.ratings[0]


def test_disconnected_groups_are_fitted_but_flagged_as_not_comparable():
    w = _wins(4, [(0, 1, 8), (1, 0, 2), (2, 3, 5), (3, 2, 5)])
    fit = fit_bradley_terry(w)
    _assert_finite_and_converged(fit)
    assert fit.components == [[0, 1], [2, 3]]
    assert any("not comparable" in m for m in fit.warnings)
    # Within a group the order is still right.
    assert fit.ratings[0] > fit.ratings[1]
    assert fit.ratings[2] == pytest.approx(fit.ratings[3])


def test_connected_but_not_strongly_connected_is_flagged():
    # {0, 1} beat each other, {2, 3} beat each other, but 0 always beats 2: one direction only.
    w = _wins(4, [(0, 1, 3), (1, 0, 3), (2, 3, 3), (3, 2, 3), (0, 2, 4)])
    fit = fit_bradley_terry(w)
    _assert_finite_and_converged(fit)
    assert fit.components == [[0, 1, 2, 3]]
    assert any("not strongly connected" in m for m in fit.warnings)
    assert fit.ratings[:2].min() > fit.ratings[2:].max()


def test_single_run_all_ties_and_empty():
    single = fit_bradley_terry(np.zeros((1, 1)))
    assert single.ratings.tolist() == [1000.0]
    assert "only one run" in single.warnings[0]

    ties = fit_bradley_terry(np.full((3, 3), 2.5))  # every game a tie
    _assert_finite_and_converged(ties)
    np.testing.assert_allclose(ties.ratings, 1000.0)
    assert ties.mle_exists  # ties count as half a win both ways: the MLE exists

    nothing = fit_bradley_terry(np.zeros((3, 3)))
    _assert_finite_and_converged(nothing)
    np.testing.assert_allclose(nothing.ratings, 1000.0)
    assert any("no games" in m for m in nothing.warnings)


def test_explicit_prior_shrinks_towards_the_mean():
    w = _wins(2, [(0, 1, 8), (1, 0, 2)])
    mle = fit_bradley_terry(w)
    # Two runs: MLE gap is log(8/2) nats exactly.
    assert mle.ratings[0] - mle.ratings[1] == pytest.approx(ELO_PER_NAT * np.log(4.0))
    shrunk = fit_bradley_terry(w, prior=5.0)
    assert 0 < shrunk.ratings[0] - shrunk.ratings[1] < mle.ratings[0] - mle.ratings[1]
    assert shrunk.warnings == []


def test_bootstrap_on_sparse_data_uses_the_fallback_and_says_so():
    # Run 2 has a single win and a single loss: many resamples lose one of them.
    a = [0, 1, 0, 1, 2, 0, 1, 0]
    b = [1, 0, 1, 0, 0, 2, 0, 1]
    o = ["a", "a", "a", "b", "a", "a", "tie", "b"]
    cells = aggregate_cells(a, b, o, 3)
    boot = bootstrap_ratings(cells, rounds=300, seed=0)
    assert boot.point.mle_exists
    assert boot.fallback_rounds > 0
    assert any("no finite MLE" in m for m in boot.warnings)
    assert np.isfinite(boot.samples).all()


def test_batched_strong_connectivity_answers_as_the_graph_search():
    from ratings.bradley_terry import comparison_components, strongly_connected_batch

    rng = np.random.default_rng(11)
    for n in (2, 3, 5, 9):
        wins = (rng.random((300, n, n)) < rng.random((300, 1, 1))).astype(float)
        wins[:, np.arange(n), np.arange(n)] = 0.0
        expected = [comparison_components(w)[1] for w in wins]
        assert strongly_connected_batch(wins).tolist() == expected
        assert 0 < sum(expected) < 300  # both answers occur
