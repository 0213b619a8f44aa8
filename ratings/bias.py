"""Position bias of annotators and per-category rating breakdowns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy

from .bradley_terry import BTResult, fit_bradley_terry

__all__ = [
    "CategoryBreakdown",
    "PositionBias",
    "category_breakdown",
    "flag_position_bias",
    "position_bias",
]


@dataclass(frozen=True)
class PositionBias:
    """Left-side win rate of one group of votes.

    Attributes
    ----------
    group : object
        Group id (e.g. annotator id), or ``None`` for all votes.
    n : int
        Decisive votes (ties and ``both_bad`` excluded).
    left_wins : int
        Votes won by the image shown on the left.
    left_rate : float
        ``left_wins / n`` (0.5 = no position bias; NaN when ``n == 0``).
    p_value : float
        Exact two-sided binomial test of ``left_rate == 0.5``.
    ci_low, ci_high : float
        Exact (Clopper-Pearson) 95 % interval for the left-win rate.
    """

    group: object
    n: int
    left_wins: int
    left_rate: float
    p_value: float
    ci_low: float
    ci_high: float


def _position_test(group: object, left_won: npt.NDArray[np.bool_]) -> PositionBias:
    n = int(left_won.size)
    k = int(left_won.sum())
    if n == 0:
        nan = float("nan")
        return PositionBias(group, 0, 0, nan, 1.0, nan, nan)
    test = scipy.stats.binomtest(k, n, p=0.5, alternative="two-sided")
    ci = test.proportion_ci(confidence_level=0.95, method="exact")
    return PositionBias(group, n, k, k / n, float(test.pvalue), float(ci.low), float(ci.high))


def position_bias(
    winner_side: npt.ArrayLike, groups: npt.ArrayLike | None = None
) -> list[PositionBias]:
    """How often the left-shown image wins among decisive votes, overall and per group.

    Under no position bias the number of left wins among ``n`` decisive votes is
    Binomial(n, 1/2) *if the left/right assignment was randomised*; the p-value is the exact
    two-sided binomial test (``scipy.stats.binomtest``),
    :math:`p = \\sum_{k': P(k') \\le P(k)} \\binom{n}{k'} 2^{-n}`.

    Parameters
    ----------
    winner_side : array_like, shape (m,)
        ``"left"`` / ``"right"`` (or booleans, True = left won) for decisive votes.  Entries
        ``"tie"``, ``"both_bad"`` or ``None`` are skipped.
    groups : array_like, shape (m,), optional
        Group of each vote (e.g. annotator id).

    Returns
    -------
    list of PositionBias
        First the overall result (``group=None``), then one per group in sorted order.
        With many annotators, correct for multiple testing before flagging anyone.
    """
    side = np.asarray(winner_side)
    if side.dtype == bool:
        decisive = np.ones(side.shape, dtype=bool)
        left = side
    else:
        labels = side.astype(str)
        left = labels == "left"
        decisive = left | (labels == "right")
    results = [_position_test(None, left[decisive])]
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != side.shape:
            raise ValueError("groups must have one entry per vote")
        g, lft = g[decisive], left[decisive]
        keys, inv = np.unique(g, return_inverse=True)
        for k, key in enumerate(keys.tolist()):
            results.append(_position_test(key, lft[inv == k]))
    return results


def flag_position_bias(results: Sequence[PositionBias], *, alpha: float = 0.05) -> list[bool]:
    """Which results of :func:`position_bias` show a position bias at level ``alpha``.

    The first (overall) result is flagged when :math:`p < \\alpha`; each of the ``m`` group
    results when :math:`p < \\alpha / m` (Bonferroni), so that with many fair annotators the
    chance of flagging any of them stays at most ``alpha``.  A result without decisive votes
    (``n == 0``) is never flagged.

    Parameters
    ----------
    results : sequence of PositionBias
        As returned by :func:`position_bias`: overall first, then one per group.
    alpha : float
        Family-wise significance level, in (0, 1).

    Returns
    -------
    list of bool
        One flag per result, in the same order.
    """
    if not results:
        return []
    threshold = alpha / max(len(results) - 1, 1)
    overall, *groups = results
    return [bool(overall.n and overall.p_value < alpha)] + [
        bool(r.n and r.p_value < threshold) for r in groups
    ]


@dataclass(frozen=True)
class CategoryBreakdown:
    """Bradley-Terry ratings per prompt category next to the overall ratings.

    Attributes
    ----------
    categories : list of str
    ratings : ndarray of float64, shape (len(categories), n)
        Elo points per category (each anchored like the overall fit).
    overall : BTResult
        Fit on the summed counts.
    per_category : dict of str to BTResult
        Full fits (with their warnings) per category.
    reversals : list of tuple(str, int, int)
        ``(category, run, other)``: ``run`` is rated above ``other`` overall but below it in
        ``category`` — e.g. the overall winner losing one category.
    """

    categories: list[str]
    ratings: npt.NDArray[np.float64]
    overall: BTResult
    per_category: dict[str, BTResult]
    reversals: list[tuple[str, int, int]]

    def category_winners(self) -> dict[str, int]:
        """Best-rated run per category."""
        return {c: int(np.argmax(r)) for c, r in zip(self.categories, self.ratings, strict=True)}


def category_breakdown(
    counts_by_category: Mapping[str, npt.ArrayLike],
    *,
    prior: float = 0.0,
    anchor: int | None = None,
    min_gap: float = 0.0,
) -> CategoryBreakdown:
    """Fit Bradley-Terry per category to expose runs that win overall but lose a category.

    Parameters
    ----------
    counts_by_category : mapping of str to array_like of shape (n, n)
        Win matrix per category (same run indexing everywhere).
    prior, anchor
        As in :func:`ratings.bradley_terry.fit_bradley_terry`.
    min_gap : float
        Only report a reversal when the category gap exceeds ``min_gap`` Elo points (use e.g.
        the bootstrap half-width to ignore noise).

    Returns
    -------
    CategoryBreakdown
        ``reversals`` lists every ``(category, i, j)`` where run ``i`` is rated above ``j``
        overall but more than ``min_gap`` Elo below ``j`` in that category.
    """
    names = list(counts_by_category)
    if not names:
        raise ValueError("need at least one category")
    mats = [np.asarray(counts_by_category[c], dtype=np.float64) for c in names]
    overall = fit_bradley_terry(sum(mats[1:], mats[0]), prior=prior, anchor=anchor)
    per = {
        c: fit_bradley_terry(m, prior=prior, anchor=anchor)
        for c, m in zip(names, mats, strict=True)
    }
    table = np.vstack([per[c].ratings for c in names])
    r = overall.ratings
    reversals = []
    for c, cat in zip(names, table, strict=True):
        above_overall = r[:, None] > r[None, :]
        below_in_cat = cat[:, None] + min_gap < cat[None, :]
        for i, j in zip(*np.nonzero(above_overall & below_in_cat), strict=True):
            reversals.append((c, int(i), int(j)))
    return CategoryBreakdown(names, table, overall, per, reversals)
