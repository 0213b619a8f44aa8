"""Specification of the cell-resampling bootstrap (ratings.bootstrap)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from ratings import (
    aggregate_cells,
    aggregate_counts,
    anchor_ratings,
    bootstrap_ratings,
    encode_outcomes,
    fit_bradley_terry_batch,
    simulate_votes,
)

from .helpers import centred


def test_95_percent_intervals_cover_the_truth_about_95_percent_of_the_time():
    truth = np.array([900.0, 960.0, 1000.0, 1040.0, 1100.0])
    experiments = 200
    rng = np.random.default_rng(12345)
    covered = np.zeros((experiments, truth.size), dtype=bool)
    for e in range(experiments):
        v = simulate_votes(truth, 1500, rng, tie_rate=0.1)
        cells = aggregate_cells(v.a, v.b, v.outcomes, truth.size)
        boot = bootstrap_ratings(cells, rounds=300, seed=e)
        target = centred(truth)
        covered[e] = (boot.lower <= target) & (target <= boot.upper)
    coverage = covered.mean()
    # If the nominal 95 % is right, the number of covering experiments for any one run is
    # Binomial(200, 0.95): P(< 180, i.e. coverage < 0.90) = 0.0012 and P(>= 199, coverage
    # >= 0.995) = 0.0004.  The pooled mean over 5 runs has at most that variance (runs are
    # positively correlated at worst), so [0.90, 0.99] fails a correct procedure with
    # probability < 0.3 %, while it catches intervals that are badly too narrow (e.g. ignoring
    # a factor sqrt(2) in the standard error gives ~83 %) or far too wide (~99.9 %).
    assert 0.90 <= coverage <= 0.99, coverage
    assert covered.mean(axis=0).min() >= 0.85  # no single run is badly under-covered


def _row_bootstrap_ratings(a, b, o, n, rounds, rng):
    """Textbook bootstrap: resample vote rows with replacement, refit each resample."""
    m = a.size
    idx = rng.integers(0, m, size=(rounds, m))
    wins = np.stack([aggregate_counts(a[k], b[k], o[k], n) for k in idx])
    fit = fit_bradley_terry_batch(wins)
    assert fit.converged.all()
    return anchor_ratings(fit.beta)


def test_cell_resampling_has_the_same_distribution_as_row_resampling():
    rng = np.random.default_rng(77)
    truth = np.array([950.0, 1000.0, 1020.0, 1080.0])
    v = simulate_votes(truth, 600, rng, tie_rate=0.2, both_bad_share=0.5)
    o = encode_outcomes(v.outcomes)
    rounds = 3000
    rows = _row_bootstrap_ratings(v.a, v.b, o, truth.size, rounds, np.random.default_rng(1))
    cells = bootstrap_ratings(aggregate_cells(v.a, v.b, o, truth.size), rounds=rounds, seed=2)
    assert cells.fallback_rounds == 0
    for stat_rows, stat_cells in [
        (rows[:, 0], cells.samples[:, 0]),
        (rows[:, 3] - rows[:, 1], cells.samples[:, 3] - cells.samples[:, 1]),
    ]:
        sd = stat_rows.std()
        # Two independent means of R draws differ with SE sd * sqrt(2 / R); allow 4 SE.
        assert abs(stat_rows.mean() - stat_cells.mean()) < 4 * sd * np.sqrt(2 / rounds)
        # The SD of R near-normal draws has relative SE ~ 1/sqrt(2R); the ratio of two
        # independent ones ~ 1/sqrt(R) = 1.8 %; allow 4 SE.
        assert abs(stat_cells.std() / sd - 1) < 4 / np.sqrt(rounds)
        # And the whole distributions are indistinguishable.
        assert stats.ks_2samp(stat_rows, stat_cells).pvalue > 1e-3


def test_result_is_reproducible_and_independent_of_thread_count():
    rng = np.random.default_rng(3)
    v = simulate_votes(np.linspace(900, 1100, 12), 20_000, rng, tie_rate=0.1)
    cells = aggregate_cells(v.a, v.b, v.outcomes, 12)
    one = bootstrap_ratings(cells, rounds=500, seed=42, workers=1)
    two = bootstrap_ratings(cells, rounds=500, seed=42, workers=2)
    np.testing.assert_array_equal(one.samples, two.samples)
    other = bootstrap_ratings(cells, rounds=500, seed=43)
    assert not np.array_equal(one.samples, other.samples)


def test_intervals_bracket_the_point_estimate_and_shrink_with_more_votes():
    truth = np.array([900.0, 1000.0, 1100.0])
    widths = []
    for n_votes in (1000, 16_000):
        v = simulate_votes(truth, n_votes, np.random.default_rng(n_votes))
        boot = bootstrap_ratings(aggregate_cells(v.a, v.b, v.outcomes, 3), rounds=500, seed=0)
        assert (boot.lower <= boot.ratings).all() and (boot.ratings <= boot.upper).all()
        widths.append((boot.upper - boot.lower).mean())
    # Width ~ 1/sqrt(votes): 16x the votes -> ~4x narrower (allow 3x..5.5x).
    assert 3.0 < widths[0] / widths[1] < 5.5


def test_anchor_run_interval_collapses_to_a_point():
    v = simulate_votes([950.0, 1000.0, 1050.0], 3000, np.random.default_rng(0))
    boot = bootstrap_ratings(aggregate_cells(v.a, v.b, v.outcomes, 3), rounds=200, anchor=1)
    np.testing.assert_allclose(boot.samples[:, 1], 1000.0)
    assert (boot.upper - boot.lower)[[0, 2]].min() > 10
