"""Specification of judge-vs-human agreement per pair of runs (ratings.judge_pairs)."""

from __future__ import annotations

import numpy as np
import pytest

from ratings import agreement_by_pair, pair_agreement


def test_agreement_is_counted_per_ordered_pair_on_decisive_units_only():
    human = ["a", "a", "b", "tie", "a", "b", "a"]
    judge = ["a", "b", "b", "a", "tie", "b", "both_bad"]
    a = [0, 0, 0, 0, 1, 1, 1]
    b = [1, 1, 1, 1, 0, 2, 2]
    res = agreement_by_pair(human, judge, a, b, 3)
    # (0, 1): three decisive units, two agree; the tie and the judge's tie are left out.
    # (1, 0) has no decisive unit and is not listed; (1, 2): one decisive unit, agrees.
    assert list(zip(res.a.tolist(), res.b.tolist(), strict=True)) == [(0, 1), (1, 2)]
    np.testing.assert_array_equal(res.n, [3, 1])
    np.testing.assert_array_equal(res.agree, [2, 1])
    np.testing.assert_allclose(res.rate, [2 / 3, 1.0])


def test_pairs_sum_to_the_overall_agreement():
    rng = np.random.default_rng(5)
    m = 500
    human = rng.choice(["a", "b", "tie"], m, p=[0.45, 0.45, 0.1])
    judge = np.where(rng.random(m) < 0.7, human, rng.choice(["a", "b", "tie"], m))
    a = rng.integers(0, 4, m)
    b = (a + rng.integers(1, 4, m)) % 4
    res = agreement_by_pair(human, judge, a, b, 4)
    overall = pair_agreement(human, judge)
    assert res.n.sum() == overall.n and res.agree.sum() == overall.agree


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        agreement_by_pair(["a"], ["a", "b"], [0], [1], 2)
    with pytest.raises(ValueError):
        agreement_by_pair(["a"], ["a"], [0], [5], 2)
