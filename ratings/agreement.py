"""How well automatic metrics agree with humans, and how well humans agree with each other."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import krippendorff
import numpy as np
import numpy.typing as npt
import scipy

from .counts import OUTCOME_A, OUTCOME_B, OUTCOME_TIE, encode_outcomes

__all__ = [
    "SPEARMAN_EXACT_MAX_N",
    "KrippendorffResult",
    "PairAgreement",
    "RankCorrelation",
    "krippendorff_alpha",
    "krippendorff_alpha_matrix",
    "majority_outcomes",
    "metric_rank_agreement",
    "pair_agreement",
    "rank_correlation",
    "spearman_p_value",
]


#: Up to this many runs, Spearman's p-value is exact: all n! orders are enumerated (8! =
#: 40 320 in about 2 ms; 9! took 60 ms and 10! would take seconds). Above it, the t
#: approximation, closer by then; for fewer runs it is far off (p = 0 for a perfect order of 3).
SPEARMAN_EXACT_MAX_N = 8


@dataclass(frozen=True)
class RankCorrelation:
    """Rank agreement between human ratings and one run-level metric.

    Attributes
    ----------
    spearman, spearman_p : float
        Spearman's :math:`\\rho` and its two-sided p-value (NaN if undefined): exact for
        ``n <= SPEARMAN_EXACT_MAX_N``, else asymptotic (:func:`spearman_p_value`).
    kendall, kendall_p : float
        Kendall's :math:`\\tau_b` (tie-corrected) and its two-sided p-value.
    n : int
        Runs with both values finite (the others are dropped).
    """

    spearman: float
    spearman_p: float
    kendall: float
    kendall_p: float
    n: int


@lru_cache(maxsize=SPEARMAN_EXACT_MAX_N)
def _orders(n: int) -> npt.NDArray[np.int8]:
    """Every permutation of ``range(n)``, one per row (n! rows), the identity first."""
    return np.array(list(itertools.permutations(range(n))), dtype=np.int8)


def spearman_p_value(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Two-sided p-value of Spearman's :math:`\\rho` between ``x`` and ``y`` under
    independence (no run order more likely than another).

    For :math:`n \\le` :data:`SPEARMAN_EXACT_MAX_N`, exact: with :math:`r_x, r_y` the ranks
    (ties averaged) and :math:`\\rho_\\pi = \\mathrm{corr}(r_x \\circ \\pi, r_y)` over the
    :math:`n!` permutations :math:`\\pi`,

    .. math:: p = \\frac{\\#\\{\\pi : |\\rho_\\pi| \\ge |\\rho|\\}}{n!}

    (n = 3, :math:`\\rho = 1`: the identity and the reversal, p = 2/6). Above, SciPy's
    asymptotic test: :math:`t = \\rho \\sqrt{(n - 2) / (1 - \\rho^2)}` against Student's t
    with :math:`n - 2` degrees of freedom, which gives p = 0 for any perfect order however few
    the runs. NaN when either side is constant or :math:`n < 3`.
    """
    rx = scipy.stats.rankdata(np.asarray(x, dtype=np.float64).ravel())
    ry = scipy.stats.rankdata(np.asarray(y, dtype=np.float64).ravel())
    n = rx.size
    if n != ry.size:
        raise ValueError("x and y must have the same length")
    if n < 3 or np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    if n > SPEARMAN_EXACT_MAX_N:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(scipy.stats.spearmanr(rx, ry).pvalue)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    rhos = rx[_orders(n)] @ ry / np.sqrt((rx @ rx) * (ry @ ry))
    observed = abs(rhos[0])  # the identity: the data's own order
    # A tolerance for floating point: orders as extreme as the data's must count.
    return float(np.mean(np.abs(rhos) >= observed - 1e-9))


def rank_correlation(
    human: npt.ArrayLike, metric: npt.ArrayLike, *, higher_is_better: bool = True
) -> RankCorrelation:
    """Spearman :math:`\\rho` and Kendall :math:`\\tau_b` between human ratings and a metric.

    .. math::

        \\rho = \\mathrm{corr}(\\mathrm{rank}(x), \\mathrm{rank}(y)), \\qquad
        \\tau_b = \\frac{n_c - n_d}{\\sqrt{(n_0 - n_1)(n_0 - n_2)}}

    (:math:`n_c, n_d` concordant/discordant pairs, :math:`n_0 = n(n-1)/2`,
    :math:`n_1, n_2` pairs tied in x, y).  Positive = the metric orders runs like humans do.
    p-values are two-sided: Spearman's from :func:`spearman_p_value` (exact for few runs),
    Kendall's from SciPy (exact without ties for small n, else asymptotic).

    Parameters
    ----------
    human : array_like, shape (n,)
        Human ratings per run (e.g. Bradley-Terry Elo; higher = better).
    metric : array_like, shape (n,)
        Metric value per run; NaN for runs without a value.
    higher_is_better : bool
        Set False for metrics such as FID, so that agreement is still positive.

    Returns
    -------
    RankCorrelation
        All-NaN statistics when fewer than 3 runs have both values or one side is constant.
    """
    x = np.asarray(human, dtype=np.float64).ravel()
    y = np.asarray(metric, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError("human and metric must have the same length")
    if not higher_is_better:
        y = -y
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(ok.sum())
    nan = float("nan")
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return RankCorrelation(nan, nan, nan, nan, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = scipy.stats.spearmanr(x, y).statistic
        tau, tau_p = scipy.stats.kendalltau(x, y, variant="b")
    return RankCorrelation(float(rho), spearman_p_value(x, y), float(tau), float(tau_p), n)


def metric_rank_agreement(
    human: npt.ArrayLike,
    metrics: Mapping[str, npt.ArrayLike],
    higher_is_better: Mapping[str, bool] | None = None,
) -> dict[str, RankCorrelation]:
    """:func:`rank_correlation` of human ratings against every metric in ``metrics``.

    Parameters
    ----------
    human : array_like, shape (n,)
    metrics : mapping of str to array_like of shape (n,)
    higher_is_better : mapping of str to bool, optional
        Missing names default to True.

    Returns
    -------
    dict of str to RankCorrelation
    """
    hib = higher_is_better or {}
    return {
        name: rank_correlation(human, values, higher_is_better=hib.get(name, True))
        for name, values in metrics.items()
    }


def majority_outcomes(
    unit_ids: npt.ArrayLike, outcomes: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8]]:
    """Human majority outcome per unit (task / pair).

    ``both_bad`` counts as ``tie``.  The majority is the most frequent of ``a``, ``b``,
    ``tie``; if ``a`` and ``b`` share the top count the unit is a tie.

    Parameters
    ----------
    unit_ids : array_like of int, shape (m,)
        Unit (e.g. pair/task id) of each vote.
    outcomes : array_like of str or int, shape (m,)

    Returns
    -------
    units : ndarray of int64, shape (u,)
        Sorted unique unit ids.
    majority : ndarray of int8, shape (u,)
        :data:`~ratings.counts.OUTCOME_A`, ``OUTCOME_B`` or ``OUTCOME_TIE``.
    """
    units, inv = np.unique(np.asarray(unit_ids), return_inverse=True)
    codes = np.minimum(encode_outcomes(outcomes), OUTCOME_TIE)
    counts = np.zeros((units.size, 3), dtype=np.int64)
    np.add.at(counts, (inv, codes), 1)
    top = counts.max(axis=1)
    majority = np.full(units.size, OUTCOME_TIE, dtype=np.int8)
    a_only = (
        (counts[:, OUTCOME_A] == top)
        & (counts[:, OUTCOME_B] < top)
        & (counts[:, OUTCOME_TIE] < top)
    )
    b_only = (
        (counts[:, OUTCOME_B] == top)
        & (counts[:, OUTCOME_A] < top)
        & (counts[:, OUTCOME_TIE] < top)
    )
    majority[a_only] = OUTCOME_A
    majority[b_only] = OUTCOME_B
    return units, majority


@dataclass(frozen=True)
class PairAgreement:
    """Per-pair agreement between the human majority and a metric judge.

    Attributes
    ----------
    n : int
        Units compared.
    agree : int
        Units where the judge picked the human majority.
    rate : float
        ``agree / n`` (NaN if ``n == 0``).
    ci_low, ci_high : float
        Exact (Clopper-Pearson) 95 % interval for the rate.
    """

    n: int
    agree: int
    rate: float
    ci_low: float
    ci_high: float


def pair_agreement(
    human: npt.ArrayLike, judge: npt.ArrayLike, *, decisive_only: bool = True
) -> PairAgreement:
    """Fraction of units where a metric judge agrees with the human majority.

    .. math:: \\text{rate} = \\frac{1}{n} \\sum_u [\\text{judge}_u = \\text{human}_u]

    Parameters
    ----------
    human, judge : array_like of str or int, shape (u,)
        Outcome per unit (``both_bad`` = tie).
    decisive_only : bool
        Only count units where both the humans and the judge picked a side (the usual
        "judge accuracy"); otherwise ties must match ties.

    Returns
    -------
    PairAgreement
    """
    h = np.minimum(encode_outcomes(human), OUTCOME_TIE)
    j = np.minimum(encode_outcomes(judge), OUTCOME_TIE)
    if h.shape != j.shape:
        raise ValueError("human and judge must have the same length")
    if decisive_only:
        keep = (h != OUTCOME_TIE) & (j != OUTCOME_TIE)
        h, j = h[keep], j[keep]
    n = int(h.size)
    agree = int((h == j).sum())
    if n == 0:
        nan = float("nan")
        return PairAgreement(0, 0, nan, nan, nan)
    ci = scipy.stats.binomtest(agree, n).proportion_ci(confidence_level=0.95, method="exact")
    return PairAgreement(n, agree, agree / n, float(ci.low), float(ci.high))


@dataclass(frozen=True)
class KrippendorffResult:
    """Krippendorff's alpha for nominal data.

    Attributes
    ----------
    alpha : float
        1 = perfect agreement, 0 = chance level, < 0 = systematic disagreement; NaN when
        undefined (fewer than two pairable values or only one value category used).
    n_units : int
        Units with at least two values (pairable units).
    n_values : int
        Pairable values :math:`n` (values in pairable units).
    coincidence : ndarray of float64, shape (v, v)
        Coincidence matrix :math:`o_{ck}` over ``categories``.
    categories : ndarray
        Sorted distinct values.
    """

    alpha: float
    n_units: int
    n_values: int
    coincidence: npt.NDArray[np.float64]
    categories: npt.NDArray[np.generic]


def _alpha_from_unit_counts(
    counts: npt.NDArray[np.float64], categories: npt.NDArray[np.generic]
) -> KrippendorffResult:
    """Alpha of a units x categories matrix of value counts :math:`n_{uc}`.

    Alpha comes from the ``krippendorff`` package; the coincidence matrix reported with it is
    computed here (the package keeps its own private).
    """
    m = counts.sum(axis=1)
    pairable = m >= 2
    c = counts[pairable]
    m = m[pairable]
    # o_ck = sum_u n_uc (n_uk - [c = k]) / (m_u - 1): ordered pairs of values within a unit,
    # each unit contributing total weight m_u.
    scaled = c / (m - 1.0)[:, None]
    coincidence = c.T @ scaled - np.diag(scaled.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = float(n_c.sum())
    # Undefined without two pairable values of two different categories (D_e = 0); the
    # package raises or divides 0 by 0 there.
    alpha = (
        float("nan")
        if n < 2 or np.count_nonzero(n_c) < 2
        else float(krippendorff.alpha(value_counts=c, level_of_measurement="nominal"))
    )
    return KrippendorffResult(alpha, int(pairable.sum()), round(n), coincidence, categories)


def krippendorff_alpha(
    units: npt.ArrayLike, coders: npt.ArrayLike, values: npt.ArrayLike
) -> KrippendorffResult:
    """Krippendorff's alpha (nominal metric) from ``(unit, coder, value)`` records.

    Following Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": with
    :math:`n_{uc}` the number of coders assigning value ``c`` to unit ``u`` and
    :math:`m_u = \\sum_c n_{uc}` (units with :math:`m_u < 2` are not pairable and dropped),

    .. math::

        o_{ck} = \\sum_u \\frac{n_{uc}\\,(n_{uk} - [c = k])}{m_u - 1}, \\qquad
        n_c = \\sum_k o_{ck}, \\qquad n = \\sum_c n_c,

        \\alpha = 1 - \\frac{D_o}{D_e}
               = 1 - (n - 1) \\frac{\\sum_{c \\ne k} o_{ck}}{\\sum_{c \\ne k} n_c n_k}.

    The ``krippendorff`` package computes alpha from the :math:`n_{uc}`
    (``level_of_measurement="nominal"``).  Missing values are simply absent records.
    For EvalHub: units = tasks (pairs shown),
    coders = annotators, values = outcomes (``"a"``, ``"b"``, ``"tie"``, ...) or any
    criterion's labels.

    Parameters
    ----------
    units, coders, values : array_like, shape (m,)
        One record per judgment.  If a coder judged a unit more than once, the last record
        is used (alpha assumes one value per coder and unit).

    Returns
    -------
    KrippendorffResult
    """
    u = np.asarray(units)
    c = np.asarray(coders)
    v = np.asarray(values)
    if not (u.shape == c.shape == v.shape) or u.ndim != 1:
        raise ValueError("units, coders and values must be 1-D arrays of equal length")
    if u.size == 0:
        return _alpha_from_unit_counts(np.zeros((0, 0)), np.zeros(0))
    _, u_idx = np.unique(u, return_inverse=True)
    _, c_idx = np.unique(c, return_inverse=True)
    # Keep the last record per (unit, coder): unique on the reversed key order.
    key = u_idx.astype(np.int64) * (int(c_idx.max()) + 1) + c_idx
    _, last_rev = np.unique(key[::-1], return_index=True)
    keep = u.size - 1 - last_rev
    categories, v_idx = np.unique(v[keep], return_inverse=True)
    counts = np.zeros((int(u_idx.max()) + 1, categories.size))
    np.add.at(counts, (u_idx[keep], v_idx), 1.0)
    return _alpha_from_unit_counts(counts, categories)


def krippendorff_alpha_matrix(reliability_data: npt.ArrayLike) -> KrippendorffResult:
    """Krippendorff's alpha (nominal) from a coders x units reliability-data matrix.

    Parameters
    ----------
    reliability_data : array_like, shape (coders, units)
        Values; ``None`` or NaN marks a missing value.

    Returns
    -------
    KrippendorffResult
        Same as :func:`krippendorff_alpha` on the non-missing cells.
    """
    data = np.asarray(reliability_data, dtype=object)
    if data.ndim != 2:
        raise ValueError("reliability_data must be 2-D (coders, units)")
    coders, units = np.nonzero(
        np.vectorize(lambda x: x is not None and not (isinstance(x, float) and np.isnan(x)))(data)
    )
    values = data[coders, units]
    # Normalise numeric values (e.g. 1 and 1.0) so they form one category.
    if all(isinstance(x, int | float | np.number) for x in values):
        values = values.astype(np.float64)
    else:
        values = values.astype(str)
    return krippendorff_alpha(units, coders, values)
