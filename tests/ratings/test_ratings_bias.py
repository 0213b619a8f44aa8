"""Specification of position bias and category breakdowns (ratings.bias)."""

from __future__ import annotations

import numpy as np
import pytest

from ratings import (
    aggregate_counts,
    category_breakdown,
    flag_position_bias,
    position_bias,
    simulate_votes,
)


def test_exact_binomial_p_value_hand_computed():
    # 9 left wins out of 10: P(X >= 9) = 11/1024 under Binomial(10, 1/2); two-sided doubles it.
    (overall,) = position_bias(["left"] * 9 + ["right"])
    assert overall.n == 10 and overall.left_wins == 9
    assert overall.p_value == pytest.approx(2 * 11 / 1024)


def test_ties_are_ignored_and_a_biased_annotator_is_flagged():
    rng = np.random.default_rng(0)
    n = 600
    annotator = rng.choice(["alice", "bob", "carol"], n)
    # alice clicks left 75 % of the time; the others are fair; 10 % ties everywhere.
    p_left = np.where(annotator == "alice", 0.75, 0.5)
    side = np.where(rng.random(n) < p_left, "left", "right").astype(object)
    side[rng.random(n) < 0.1] = "tie"
    results = position_bias(side, annotator)
    overall, by_name = results[0], {r.group: r for r in results[1:]}
    assert overall.group is None
    assert overall.n == (side != "tie").sum()
    assert by_name["alice"].p_value < 1e-6 and by_name["alice"].ci_low > 0.6
    assert by_name["bob"].p_value > 0.01 and by_name["carol"].p_value > 0.01


def test_groups_are_flagged_with_a_bonferroni_correction():
    # Three annotators, so each is tested at 0.05 / 3 ~ 0.0167. x: 9 of 10 left wins,
    # p ~ 0.021, would be flagged alone but not among three; y: 15 of 17, p ~ 0.0023, is.
    sides = ["left"] * 9 + ["right"] + ["left"] * 15 + ["right"] * 2 + ["left", "right"]
    groups = ["x"] * 10 + ["y"] * 17 + ["z"] * 2
    results = position_bias(sides, groups)
    p = {r.group: r.p_value for r in results[1:]}
    assert 0.05 / 3 < p["x"] < 0.05 and p["y"] < 0.05 / 3
    assert flag_position_bias(results) == [True, False, True, False]
    assert flag_position_bias(results, alpha=0.001) == [True, False, False, False]


def test_results_without_decisive_votes_are_never_flagged():
    results = position_bias(["tie", "both_bad"], ["x", "x"])
    assert results[0].n == 0 and flag_position_bias(results) == [False]
    assert flag_position_bias([]) == []


def test_category_breakdown_shows_an_overall_winner_losing_one_category():
    rng = np.random.default_rng(4)
    # Run 0 is much better at photos, slightly worse at text rendering than run 1.
    truth = {"photo": [1150.0, 950.0, 900.0], "text": [980.0, 1060.0, 900.0]}
    counts = {}
    for name, r in truth.items():
        v = simulate_votes(r, 6000, rng)
        counts[name] = aggregate_counts(v.a, v.b, v.outcomes, 3)
    res = category_breakdown(counts, min_gap=20)
    assert int(np.argmax(res.overall.ratings)) == 0
    assert res.category_winners() == {"photo": 0, "text": 1}
    assert ("text", 0, 1) in res.reversals
    assert all(cat == "text" for cat, _, _ in res.reversals)
    assert res.ratings.shape == (2, 3)
