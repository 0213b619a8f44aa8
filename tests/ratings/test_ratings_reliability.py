"""Annotator reliability (crowd-BT accuracy, weights, flags with reasons)."""

import numpy as np
import pytest
from scipy.special import expit

from ratings.reliability import FLAG_REASONS, AnnotatorEvidence, annotator_reliability

KINDS = ("honest",) * 9 + ("random", "always_left", "fast")


def _campaign(seed: int, votes: int = 3000, n: int = 10, gold_rate: float = 0.1
              ) -> AnnotatorEvidence:
    """Honest annotators follow Bradley-Terry with a 3-point left bias; the others click at
    random, always left, or at random faster than the floor."""
    rng = np.random.default_rng(seed)
    beta = np.linspace(-1.0, 1.0, n)
    a_count = len(KINDS)
    dec, ties = np.zeros((a_count, n, n)), np.zeros((a_count, n, n))
    left, gold_n, gold_ok = np.zeros(a_count), np.zeros(a_count), np.zeros(a_count)
    timed, fast = np.zeros(a_count), np.zeros(a_count)
    for _ in range(votes):
        k = int(rng.integers(a_count))
        kind = KINDS[k]
        i, j = rng.choice(n, 2, replace=False)
        timed[k] += 1
        fast[k] += kind == "fast" or rng.random() < 0.02
        if rng.random() < gold_rate:
            gold_n[k] += 1
            gold_ok[k] += rng.random() < (0.95 if kind == "honest" else 0.5)
            continue
        if kind == "honest" and rng.random() < 0.05:
            ties[k, i, j] += 1
            ties[k, j, i] += 1
            continue
        left_won = (rng.random() < expit(beta[i] - beta[j] + 0.12) if kind == "honest"
                    else True if kind == "always_left" else rng.random() < 0.5)
        winner, loser = (i, j) if left_won else (j, i)
        dec[k, winner, loser] += 1
        left[k] += left_won
    return AnnotatorEvidence(dec, ties, left, gold_n, gold_ok, timed, fast)


def test_honest_annotators_keep_their_weight_and_the_unreliable_lose_it():
    rel = annotator_reliability(_campaign(0))
    honest = np.array([kind == "honest" for kind in KINDS])
    assert rel.accuracy[honest].min() > 0.8
    assert rel.accuracy[~honest].max() < 0.65
    assert rel.weight[honest].min() > 10 * rel.weight[~honest].max()
    assert not rel.flagged[honest].any()


def test_each_unreliable_annotator_is_flagged_for_what_they_did():
    rel = annotator_reliability(_campaign(1))
    reasons = {KINDS[k]: set(rel.reasons(k)) for k in range(9, 12)}
    assert "position" in reasons["always_left"]
    assert "fast" in reasons["fast"]
    assert "position" not in reasons["random"] and "fast" not in reasons["random"]
    assert all("gold" in r and "accuracy" in r for r in reasons.values())
    assert set(rel.flags) == set(FLAG_REASONS)


def test_the_weight_is_the_crowd_bt_information_times_the_side_and_speed_factors():
    evidence = _campaign(2)
    rel = annotator_reliability(evidence)
    fast_share = evidence.fast_votes / evidence.timed_votes
    decided = evidence.decisive.sum(axis=(1, 2))
    left_share = (evidence.left_wins + 10.0) / (decided + 20.0)
    expected = (np.maximum(0.0, 2 * rel.accuracy - 1) ** 2 * (1 - np.abs(2 * left_share - 1))
                * (1 - fast_share))
    np.testing.assert_allclose(rel.weight, expected)
    np.testing.assert_allclose(rel.fast_share, fast_share)


def test_the_weighted_fit_recovers_the_order_despite_the_unreliable():
    rel = annotator_reliability(_campaign(3))
    assert np.all(np.diff(rel.beta) > -0.15)
    assert np.corrcoef(rel.beta, np.linspace(-1, 1, 10))[0, 1] > 0.97


def test_a_stack_of_campaigns_answers_as_each_campaign_alone():
    first, second = _campaign(4, votes=800), _campaign(5, votes=800)
    stacked = AnnotatorEvidence(*(np.stack([getattr(first, f), getattr(second, f)])
                                  for f in first.__dataclass_fields__))
    both = annotator_reliability(stacked)
    for r, single in enumerate((first, second)):
        alone = annotator_reliability(single)
        np.testing.assert_allclose(both.weight[r], alone.weight, atol=1e-6)
        for name in FLAG_REASONS:
            np.testing.assert_array_equal(both.flags[name][r], alone.flags[name])


def test_fractional_vote_weights_that_sum_just_below_a_whole_count_still_flag_position():
    """Best-of-4 votes imply 3 pairs of weight 1/3 each; 24 such votes, all won from the
    earlier slot, sum to 23.999... decisive and left wins, which is 24 whole votes."""
    dec, ties = np.zeros((2, 4, 4)), np.zeros((2, 4, 4))
    third = 1.0 / 3.0
    for vote in range(24):
        winner = vote % 4
        for loser in range(4):
            if loser != winner:
                dec[0, winner, loser] += third
        dec[1, (vote + 1) % 4, vote % 4] += 1.0
    left = np.array([dec[0].sum(), 12.0])
    assert left[0] != 24.0  # the rounding error this is about
    evidence = AnnotatorEvidence(dec, ties, left, *np.zeros((4, 2)))
    rel = annotator_reliability(evidence)
    assert "position" in rel.reasons(0)
    assert "position" not in rel.reasons(1)


def test_without_votes_every_annotator_keeps_the_prior():
    empty = AnnotatorEvidence(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), *np.zeros((5, 2)))
    rel = annotator_reliability(empty, accuracy_prior=(4.0, 2.0))
    np.testing.assert_allclose(rel.accuracy, 0.75)
    assert not rel.flagged.any()


def test_malformed_evidence_is_refused():
    with pytest.raises(ValueError, match="shape"):
        AnnotatorEvidence(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), np.zeros(3), *np.zeros((4, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        AnnotatorEvidence(-np.ones((2, 3, 3)), np.zeros((2, 3, 3)), *np.zeros((5, 2)))
