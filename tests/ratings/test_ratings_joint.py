"""One Plackett-Luce leaderboard over counted pairwise and K-wise vote patterns."""

from __future__ import annotations

import numpy as np

from ratings import fit_bradley_terry
from ratings.counts import aggregate_counts
from ratings.joint import bootstrap_joint
from ratings.plackett_luce import Rankings, fit_plackett_luce, rankings_from_pairs

TRUTH = np.array([0.9, 0.3, 0.0, -0.4, -0.8])


def _picks(rng, votes, k, picks):
    shown, chosen = [], []
    for _ in range(votes):
        s = rng.choice(TRUTH.size, size=k, replace=False)
        left, order = list(s), []
        for _ in range(picks):
            w = np.exp(TRUTH[left])
            c = left[rng.choice(len(left), p=w / w.sum())]
            order.append(int(c))
            left.remove(c)
        shown.append(tuple(int(x) for x in s))
        chosen.append(tuple(order))
    return shown, chosen


def test_counted_patterns_fit_like_the_votes_one_by_one():
    rng = np.random.default_rng(0)
    shown, chosen = _picks(rng, 400, 3, 1)
    # The same votes, grouped: one entry per distinct (set, pick) with its count.
    patterns: dict = {}
    for s, c in zip(shown, chosen, strict=True):
        key = (tuple(sorted(s)), c)
        patterns[key] = patterns.get(key, 0) + 1
    grouped = Rankings(TRUTH.size, [k[0] for k in patterns], [k[1] for k in patterns],
                       np.ones(len(patterns)), np.arange(len(patterns)))
    joint = bootstrap_joint(grouped, list(patterns.values()), rounds=0)
    one_by_one = fit_plackett_luce(Rankings.of(TRUTH.size, chosen, shown=shown))
    assert np.abs(joint.ratings - one_by_one.ratings).max() < 1e-6


def test_on_pairs_alone_the_joint_fit_is_bradley_terry_ties_included():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 5, 600)
    b = (a + rng.integers(1, 5, 600)) % 5
    outcomes = rng.choice(["a", "b", "tie"], size=600, p=[0.5, 0.4, 0.1])
    rows = {}
    for x, y, o in zip(a.tolist(), b.tolist(), outcomes.tolist(), strict=True):
        rows[(x, y, o)] = rows.get((x, y, o), 0) + 1
    keys = list(rows)
    grouped = rankings_from_pairs([k[0] for k in keys], [k[1] for k in keys],
                                  [k[2] for k in keys], 5)
    joint = bootstrap_joint(grouped, [rows[k] for k in keys], rounds=0)
    bt = fit_bradley_terry(aggregate_counts(a, b, outcomes, 5))
    assert np.abs(joint.ratings - bt.ratings).max() < 1e-6


def test_pairs_and_best_of_k_together_recover_the_order_with_intervals_around_the_point():
    rng = np.random.default_rng(2)
    shown, chosen = _picks(rng, 300, 4, 1)
    pair_shown, pair_chosen = _picks(rng, 300, 2, 1)
    ranked = Rankings.of(TRUTH.size, chosen, shown=shown)
    pairs = Rankings.of(TRUTH.size, pair_chosen, shown=pair_shown)
    every = pairs + ranked
    boot = bootstrap_joint(every, np.ones(len(every)), rounds=200, seed=3)
    assert list(np.argsort(-boot.ratings)) == [0, 1, 2, 3, 4]
    assert (boot.lower <= boot.ratings).all() and (boot.ratings <= boot.upper).all()
    assert (boot.upper - boot.lower > 0).all()
    assert boot.samples.shape == (200, TRUTH.size)
    # Same seed, same intervals: the leaderboard is reproducible.
    again = bootstrap_joint(every, np.ones(len(every)), rounds=200, seed=3)
    assert np.array_equal(again.lower, boot.lower)
