"""Specification of human/metric agreement and inter-annotator reliability."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ratings import (
    OUTCOME_A,
    OUTCOME_B,
    OUTCOME_TIE,
    krippendorff_alpha,
    krippendorff_alpha_matrix,
    majority_outcomes,
    metric_rank_agreement,
    pair_agreement,
    rank_correlation,
    spearman_p_value,
)
from ratings.agreement import SPEARMAN_EXACT_MAX_N

M = None  # missing value

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: nominal data,
# 4 observers (rows) x 12 units (columns), missing values; the paper reports alpha = 0.743.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, M, M, M],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, M, 3],
    [M, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, M],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, M],
]


def test_krippendorff_alpha_textbook_example_with_missing_values():
    res = krippendorff_alpha_matrix(KRIPPENDORFF_2011)
    assert res.alpha == pytest.approx(0.743, abs=5e-4)
    # Unit 12 has a single value and is not pairable: 11 units, n = 40 pairable values.
    assert res.n_units == 11 and res.n_values == 40
    # The coincidence matrix is symmetric and its margins are the value frequencies.
    np.testing.assert_allclose(res.coincidence, res.coincidence.T)
    np.testing.assert_allclose(res.coincidence.sum(axis=1), [9, 13, 10, 5, 3], atol=1e-12)


def test_krippendorff_alpha_hand_computed_binary_example():
    # Krippendorff (2011) section A, two observers, 10 units: 4 disagreeing units give
    # o_01 = o_10 = 4, n_0 = 14, n_1 = 6, n = 20, so
    # alpha = 1 - (n - 1) * (o_01 + o_10) / (2 * n_0 * n_1) = 1 - 19 * 8 / 168 = 0.0952.
    data = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]
    assert krippendorff_alpha_matrix(data).alpha == pytest.approx(1 - 19 * 8 / 168)


def test_krippendorff_alpha_from_vote_records():
    # EvalHub form: (task, annotator, outcome).  Perfect agreement -> 1.
    units = [1, 1, 1, 2, 2, 3, 3]
    coders = ["u", "v", "w", "u", "v", "u", "w"]
    values = ["a", "a", "a", "b", "b", "tie", "tie"]
    assert krippendorff_alpha(units, coders, values).alpha == 1.0
    # A re-vote by the same annotator replaces the earlier one.
    again = krippendorff_alpha([*units, 1], [*coders, "u"], [*values, "b"])
    single = krippendorff_alpha(units, coders, ["b", "a", "a", "b", "b", "tie", "tie"])
    assert again.alpha == pytest.approx(single.alpha) and again.alpha < 1.0
    # Only one category ever used: no variation, alpha undefined.
    assert np.isnan(krippendorff_alpha([1, 1, 2, 2], [0, 1, 0, 1], ["a"] * 4).alpha)


def _alpha_by_pairs(reliability_data) -> float:
    """Reference alpha, written from Krippendorff (2011) pair by pair.

    Every ordered pair of values (i, j), i != j, within a unit of m_u >= 2 values adds
    1 / (m_u - 1) to the coincidence o[v_i, v_j]; alpha = 1 - (n - 1) * sum_{c != k} o_ck /
    sum_{c != k} n_c n_k.
    """
    o: dict[tuple, float] = {}
    for unit in zip(*reliability_data, strict=True):
        values = [v for v in unit if v is not None]
        for i, first in enumerate(values):
            for j, second in enumerate(values):
                if i != j:
                    o[first, second] = o.get((first, second), 0.0) + 1 / (len(values) - 1)
    n_c: dict = {}
    for (first, _), weight in o.items():
        n_c[first] = n_c.get(first, 0.0) + weight
    n = sum(n_c.values())
    observed = sum(weight for (first, second), weight in o.items() if first != second)
    expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k)
    return 1 - (n - 1) * observed / expected


def test_krippendorff_package_alpha_agrees_with_the_pairwise_definition():
    rng = np.random.default_rng(13)
    for trial in range(30):
        coders, units = rng.integers(2, 9), rng.integers(5, 120)
        data = rng.choice(["a", "b", "tie", "both_bad"][: 2 + trial % 3], size=(coders, units))
        data = np.where(rng.random((coders, units)) < 0.35, None, data).tolist()  # missing
        assert krippendorff_alpha_matrix(data).alpha == pytest.approx(
            _alpha_by_pairs(data), rel=0, abs=1e-12)


def test_rank_correlations_hand_computed():
    human = [1, 2, 3, 4, 5]
    metric = [1, 3, 2, 5, 4]
    res = rank_correlation(human, metric)
    # Two discordant pairs out of 10: tau = (8 - 2) / 10; sum d^2 = 4: rho = 1 - 24 / 120.
    assert res.kendall == pytest.approx(0.6)
    assert res.spearman == pytest.approx(0.8)
    assert res.n == 5


def test_rank_correlation_handles_direction_nan_and_too_few_runs():
    human = np.array([1000.0, 1050.0, 1100.0, 1150.0, 990.0])
    fid = np.array([30.0, 25.0, np.nan, 12.0, 31.0])  # lower is better
    res = rank_correlation(human, fid, higher_is_better=False)
    assert res.n == 4 and res.spearman == pytest.approx(1.0) and res.kendall == pytest.approx(1.0)
    assert np.isnan(rank_correlation([1.0, 2.0], [3.0, 4.0]).spearman)
    both = metric_rank_agreement(human, {"fid": fid, "clip": human}, {"fid": False})
    assert both["clip"].kendall == pytest.approx(1.0) and both["fid"].n == 4


def test_spearman_p_is_exact_for_few_runs_by_hand():
    # n = 3, rho = 1: of the 3! = 6 orders, the identity and the reversal have |rho| = 1.
    res = rank_correlation([1.0, 2.0, 3.0], [10.0, 20.0, 30.0])
    assert res.spearman == pytest.approx(1.0) and res.spearman_p == pytest.approx(2 / 6)
    # n = 6, sum d^2 = 66: rho = 1 - 6 * 66 / 210 = -0.8857. |rho| >= 0.8857 means
    # sum d^2 <= 4 (the identity, 5 single and 6 double adjacent swaps: 12 orders) or, by
    # reversal, >= 66 (12 more): p = 24 / 720 = 1/30, where the t approximation says 0.0188.
    res = rank_correlation([1, 2, 3, 4, 5, 6], [5, 6, 3, 4, 2, 1])
    assert res.spearman == pytest.approx(-31 / 35)
    assert res.spearman_p == pytest.approx(24 / 720)
    assert stats.spearmanr([1, 2, 3, 4, 5, 6], [5, 6, 3, 4, 2, 1]).pvalue == pytest.approx(
        0.0188, abs=1e-4)


def test_spearman_p_matches_scipys_exact_permutation_test_with_ties():
    rng = np.random.default_rng(7)
    for n in range(3, SPEARMAN_EXACT_MAX_N):  # 8! calls of spearmanr would take seconds
        x, y = rng.integers(0, 4, n).astype(float), rng.normal(size=n)
        if np.ptp(x) == 0:
            continue
        exact = stats.permutation_test(
            (x,), lambda xs, y=y: stats.spearmanr(xs, y).statistic,
            permutation_type="pairings", n_resamples=np.inf)
        # SciPy's two-sided p doubles the smaller tail; ours counts |rho| as extreme. They
        # agree where the null distribution is symmetric, and ties can break the symmetry.
        distribution = np.abs(exact.null_distribution)
        expected = np.mean(distribution >= abs(exact.statistic) - 1e-9)
        assert spearman_p_value(x, y) == pytest.approx(expected), n


def test_spearman_p_is_asymptotic_above_the_exact_limit():
    x = np.arange(SPEARMAN_EXACT_MAX_N + 1, dtype=float)
    y = x.copy()
    y[[0, 1]] = y[[1, 0]]
    assert spearman_p_value(x, y) == pytest.approx(stats.spearmanr(x, y).pvalue)
    assert np.isnan(spearman_p_value([1, 2], [2, 1]))
    assert np.isnan(spearman_p_value([1, 1, 1], [1, 2, 3]))


def test_majority_and_per_pair_judge_agreement():
    units = [7, 7, 7, 8, 8, 9, 9, 9, 9]
    votes = ["a", "a", "b", "b", "both_bad", "a", "b", "tie", "tie"]
    ids, majority = majority_outcomes(units, votes)
    np.testing.assert_array_equal(ids, [7, 8, 9])
    # 7: a 2-1; 8: b vs both_bad (=tie) 1-1, no unique top -> tie; 9: tie 2 beats a 1, b 1.
    np.testing.assert_array_equal(majority, [OUTCOME_A, OUTCOME_TIE, OUTCOME_TIE])

    human = ["a", "b", "b", "a", "tie"]
    judge = ["a", "b", "a", "tie", "tie"]
    res = pair_agreement(human, judge)
    assert (res.n, res.agree) == (3, 2)  # the tie rows are excluded
    assert res.ci_low < 2 / 3 < res.ci_high
    all_rows = pair_agreement(human, judge, decisive_only=False)
    assert (all_rows.n, all_rows.agree) == (5, 3)
    assert pair_agreement([OUTCOME_B], [OUTCOME_A]).rate == 0.0
