"""Specification of the Plackett-Luce fit (ratings.plackett_luce): Hunter's MM on K-wise votes."""

from __future__ import annotations

import choix
import numpy as np
import pytest

from ratings import ELO_PER_NAT, aggregate_counts, fit_bradley_terry, simulate_votes
from ratings.plackett_luce import (
    Rankings,
    bootstrap_plackett_luce,
    expand_ties,
    fit_plackett_luce,
    fit_plackett_luce_batch,
    rankings_from_pairs,
)

TRUTH = np.array([0.0, 0.4, -0.3, 0.9, -0.8, 0.2])  # log-strengths, nats


def _pl_rankings(beta, votes, k, picks, seed):
    """Votes from the Plackett-Luce model: ``k`` random runs shown, ``picks`` picked in order
    (Gumbel trick: sorting beta + Gumbel noise draws a Plackett-Luce ranking)."""
    rng = np.random.default_rng(seed)
    shown, chosen = [], []
    for _ in range(votes):
        s = rng.choice(beta.size, size=k, replace=False)
        order = s[np.argsort(-(beta[s] + rng.gumbel(size=k)))]
        shown.append(tuple(s.tolist()))
        chosen.append(tuple(order[:picks].tolist()))
    return shown, chosen


def test_on_pairwise_votes_with_ties_it_is_the_bradley_terry_fit():
    rng = np.random.default_rng(1)
    votes = simulate_votes(ELO_PER_NAT * TRUTH, 600, rng, tie_rate=0.1, both_bad_share=0.3)
    pl = fit_plackett_luce(rankings_from_pairs(votes.a, votes.b, votes.outcomes, TRUTH.size))
    bt = fit_bradley_terry(aggregate_counts(votes.a, votes.b, votes.outcomes, TRUTH.size))
    assert pl.converged and pl.mle_exists
    assert np.allclose(pl.ratings, bt.ratings, atol=1e-6)


def test_full_rankings_agree_with_choix_within_1e_6():
    _, chosen = _pl_rankings(TRUTH, 300, 4, 4, seed=2)
    ours = fit_plackett_luce(Rankings.of(TRUTH.size, chosen), tol=1e-13)
    theirs = choix.mm_rankings(TRUTH.size, chosen, tol=1e-13, max_iter=100_000)
    assert np.abs(ours.beta - (theirs - theirs.mean())).max() < 1e-6


def test_best_of_k_picks_agree_with_choix_within_1e_6():
    shown, chosen = _pl_rankings(TRUTH, 400, 4, 1, seed=3)
    ours = fit_plackett_luce(Rankings.of(TRUTH.size, chosen, shown=shown), tol=1e-13)
    top1 = [(c[0], [x for x in s if x != c[0]]) for s, c in zip(shown, chosen, strict=True)]
    theirs = choix.mm_top1(TRUTH.size, top1, tol=1e-13, max_iter=100_000)
    assert np.abs(ours.beta - (theirs - theirs.mean())).max() < 1e-6


def test_the_fit_recovers_the_strengths_that_generated_the_rankings():
    shown, chosen = _pl_rankings(TRUTH, 4000, 4, 2, seed=4)
    fit = fit_plackett_luce(Rankings.of(TRUTH.size, chosen, shown=shown))
    assert np.abs(fit.beta - (TRUTH - TRUTH.mean())).max() < 0.1


def test_pairwise_and_k_wise_votes_fit_one_scale():
    pairs = simulate_votes(ELO_PER_NAT * TRUTH, 300, np.random.default_rng(5))
    shown, chosen = _pl_rankings(TRUTH, 300, 4, 1, seed=6)
    both = (rankings_from_pairs(pairs.a, pairs.b, pairs.outcomes, TRUTH.size)
            + Rankings.of(TRUTH.size, chosen, shown=shown))
    assert len(both) == 600 and np.array_equal(np.unique(both.votes), np.arange(600))
    fit = fit_plackett_luce(both)
    assert fit.converged
    assert np.argsort(fit.beta).tolist() == np.argsort(TRUTH).tolist()


def test_a_tie_between_two_runs_counts_as_both_orders_at_half_weight():
    tied = expand_ties(3, [((0,), (1, 2))])
    assert tied.picks == [(0, 1), (0, 2)] and tied.weights.tolist() == [0.5, 0.5]
    assert tied.votes.tolist() == [0, 0]  # one vote for the bootstrap
    pairs = rankings_from_pairs([0, 1], [1, 2], ["tie", "a"], 3)
    assert pairs.picks == [(0,), (1,), (1,)] and pairs.weights.tolist() == [0.5, 0.5, 1.0]


def test_without_a_finite_mle_a_reported_pseudo_count_keeps_ratings_finite():
    # Run 0 won every vote: its maximum-likelihood strength is infinite.
    fit = fit_plackett_luce(Rankings.of(3, [(0, 1, 2), (0, 2, 1), (0, 1, 2)]))
    assert not fit.mle_exists and fit.prior == 1.0 and fit.warnings
    assert np.isfinite(fit.ratings).all() and fit.ratings.argmax() == 0
    # The pseudo-count is the one of the Bradley-Terry fit: same result on pairwise votes.
    pairs = rankings_from_pairs([0, 0, 1], [1, 2, 2], ["a", "a", "a"], 3)
    bt = fit_bradley_terry(aggregate_counts([0, 0, 1], [1, 2, 2], ["a", "a", "a"], 3))
    assert np.allclose(fit_plackett_luce(pairs).ratings, bt.ratings, atol=1e-6)


def test_bootstrap_intervals_contain_the_point_estimate_and_shrink_with_more_votes():
    small = Rankings.of(TRUTH.size, *reversed(_pl_rankings(TRUTH, 200, 4, 1, seed=7)))
    large = Rankings.of(TRUTH.size, *reversed(_pl_rankings(TRUTH, 1600, 4, 1, seed=7)))
    boot_small = bootstrap_plackett_luce(small, rounds=200, seed=0)
    boot_large = bootstrap_plackett_luce(large, rounds=200, seed=0)
    assert np.all(boot_small.lower <= boot_small.point.ratings)
    assert np.all(boot_small.point.ratings <= boot_small.upper)
    # Eight times the votes: intervals about sqrt(8) = 2.8 times narrower.
    ratio = (boot_small.upper - boot_small.lower).mean() / (boot_large.upper
                                                           - boot_large.lower).mean()
    assert 2.0 < ratio < 3.8
    again = bootstrap_plackett_luce(small, rounds=200, seed=0)
    assert np.array_equal(again.samples, boot_small.samples)


@pytest.mark.parametrize(("shown", "picks", "message"), [
    ([(0,)], [(0,)], "at least two"),
    ([(0, 1)], [(2,)], "picks"),
    ([(0, 5)], [(0,)], "run indices"),
])
def test_malformed_rankings_are_refused(shown, picks, message):
    with pytest.raises(ValueError, match=message):
        Rankings(3, shown, picks, np.ones(1))


def test_a_batch_of_weightings_fits_each_as_alone():
    shown, chosen = _pl_rankings(TRUTH, 120, 3, 1, seed=8)
    rankings = Rankings.of(TRUTH.size, chosen, shown=shown)
    weights = np.random.default_rng(9).poisson(1.0, size=(4, 120)).astype(float)
    batch = fit_plackett_luce_batch(rankings, weights, tol=1e-12)
    for row, w in zip(batch, weights, strict=True):
        alone = fit_plackett_luce(Rankings(TRUTH.size, rankings.shown, rankings.picks, w),
                                  tol=1e-12)
        assert np.abs(row - alone.beta).max() < 1e-8
