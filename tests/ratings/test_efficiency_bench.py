"""Specification of what bench/efficiency.py computes beside its simulations (no Django)."""

from __future__ import annotations

from bench.efficiency import Setting, simulate, static_allocation_bound


def test_knowing_the_truth_a_fixed_allocation_needs_no_more_votes_than_uniform():
    bound = static_allocation_bound(6, 120.0)
    assert 0 < bound["oracle"] <= bound["uniform"]
    assert bound["ratio"] >= 1.0


def test_simulated_thompson_campaigns_find_the_best_run_sooner_and_order_the_rest_worse():
    # 60 campaigns of 8 runs, 400 votes each, the same truths for both (same seed).
    setting = Setting(runs=8, reps=60, max_votes=400)
    uniform = simulate("uniform", setting, seed=3)
    thompson = simulate("thompson", setting, seed=3)
    assert uniform.votes == thompson.votes
    assert thompson.best_first[-1] > uniform.best_first[-1]
    assert thompson.tau[-1] < uniform.tau[-1] - 0.05
