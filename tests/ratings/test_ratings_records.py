"""Specification of per-run records and win rates (ratings.records)."""

from __future__ import annotations

import numpy as np

from ratings import aggregate_cells, run_records, simulate_votes


def test_records_count_wins_losses_and_ties_per_run():
    # Run 0 beats 1 twice, loses to 1 once; 1 and 2 tie once; 2 beats 0 once; one both_bad.
    a = [0, 0, 1, 1, 2, 0]
    b = [1, 1, 0, 2, 0, 2]
    o = ["a", "a", "a", "tie", "a", "both_bad"]
    rec = run_records(aggregate_cells(a, b, o, 4))
    np.testing.assert_array_equal(rec.wins, [2, 1, 1, 0])
    np.testing.assert_array_equal(rec.losses, [2, 2, 0, 0])
    np.testing.assert_array_equal(rec.ties, [1, 1, 2, 0])  # both_bad counts as a tie
    np.testing.assert_array_equal(rec.games, [5, 4, 3, 0])
    # (wins + ties / 2) / games; a run that never played has no win rate.
    np.testing.assert_allclose(rec.win_rate[:3], [2.5 / 5, 1.5 / 4, 2.0 / 3])
    assert np.isnan(rec.win_rate[3])


def test_records_agree_with_the_win_matrix():
    rng = np.random.default_rng(11)
    v = simulate_votes(np.array([1100.0, 1000.0, 950.0, 900.0, 1050.0]), 3000, rng,
                       tie_rate=0.2, both_bad_share=0.5)
    cells = aggregate_cells(v.a, v.b, v.outcomes, 5)
    wins = cells.to_wins()
    rec = run_records(cells)
    np.testing.assert_allclose(rec.games, (wins + wins.T).sum(axis=1))
    np.testing.assert_allclose(rec.win_rate, wins.sum(axis=1) / (wins + wins.T).sum(axis=1))
    assert rec.wins.sum() == rec.losses.sum()  # every decisive vote has a winner and a loser
    assert rec.games.sum() == 2 * v.a.size


def test_weighted_cells_give_fractional_records():
    rec = run_records(aggregate_cells([0, 1], [1, 0], ["a", "tie"], 2, weights=[2.5, 1.0]))
    np.testing.assert_allclose(rec.wins, [2.5, 0.0])
    np.testing.assert_allclose(rec.ties, [1.0, 1.0])
    np.testing.assert_allclose(rec.win_rate, [3.0 / 3.5, 0.5 / 3.5])
