"""Ranks with confidence, rank intervals from bootstrap rounds, and win-rate matrices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy

__all__ = [
    "RankIntervals",
    "bootstrap_ranks",
    "observed_win_rates",
    "predicted_win_rates",
    "rank_intervals",
    "rank_with_confidence",
]


def rank_with_confidence(lower: npt.ArrayLike, upper: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Conservative rank from confidence intervals (the Chatbot Arena rule).

    .. math:: \\mathrm{rank}_i = 1 + \\#\\{j : \\mathrm{lower}_j > \\mathrm{upper}_i\\}

    A run is only ranked below another when the other's whole interval lies above its own, so
    runs with overlapping intervals share a rank.

    Parameters
    ----------
    lower, upper : array_like, shape (n,)
        Confidence bounds (Elo points).

    Returns
    -------
    ndarray of int64, shape (n,)
        1 = best.  Ranks need not be consecutive.
    """
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    if lo.shape != hi.shape or lo.ndim != 1:
        raise ValueError("lower and upper must be 1-D arrays of equal length")
    return 1 + (lo[None, :] > hi[:, None]).sum(axis=1).astype(np.int64)


def bootstrap_ranks(samples: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Rank of every run in every bootstrap round (1 = best).

    .. math:: \\mathrm{rank}_{b,i} = 1 + \\#\\{j : r_{b,j} > r_{b,i}\\}

    Runs with equal ratings in a round share the better rank (competition ranking).

    Parameters
    ----------
    samples : array_like, shape (R, n)
        Ratings of each round (Elo points), e.g. ``BootstrapResult.samples``.

    Returns
    -------
    ndarray of int64, shape (R, n)
    """
    r = np.asarray(samples, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError("samples must have shape (rounds, runs)")
    if r.size == 0:
        return np.zeros(r.shape, dtype=np.int64)
    # rankdata(-r, "min") = 1 + #{j: -r_j < -r_i}: the formula above, in O(R n log n) time and
    # O(R n) memory instead of the (R, n, n) comparison array.
    return scipy.stats.rankdata(-r, method="min", axis=1).astype(np.int64)


@dataclass(frozen=True)
class RankIntervals:
    """Percentile interval of each run's rank over bootstrap rounds.

    Attributes
    ----------
    low, high : ndarray of int64, shape (n,)
        ``floor`` of the lower and ``ceil`` of the upper percentile of the run's rank
        (1 = best), so the interval is a range of whole ranks that always contains the
        percentile interval.
    percentiles : (float, float)
        The percentiles used, e.g. (2.5, 97.5) for a 95 % interval.
    """

    low: npt.NDArray[np.int64]
    high: npt.NDArray[np.int64]
    percentiles: tuple[float, float] = (2.5, 97.5)


def rank_intervals(
    samples: npt.ArrayLike, percentiles: tuple[float, float] = (2.5, 97.5)
) -> RankIntervals:
    """Percentile interval of each run's rank over bootstrap rounds.

    With :math:`\\mathrm{rank}_{b,i}` from :func:`bootstrap_ranks`,

    .. math::

        \\mathrm{low}_i = \\lfloor Q_{p_1}(\\{\\mathrm{rank}_{b,i}\\}_b) \\rfloor, \\qquad
        \\mathrm{high}_i = \\lceil Q_{p_2}(\\{\\mathrm{rank}_{b,i}\\}_b) \\rceil

    where :math:`Q_p` is numpy's (linearly interpolated) ``p``-th percentile.

    Parameters
    ----------
    samples : array_like, shape (R, n)
        Ratings of each bootstrap round (Elo points), ``R >= 1``.
    percentiles : (float, float)
        Lower and upper percentiles in [0, 100].

    Returns
    -------
    RankIntervals
    """
    ranks = bootstrap_ranks(samples)
    if ranks.shape[0] == 0:
        raise ValueError("rank intervals need at least one bootstrap round")
    lo, hi = np.percentile(ranks, percentiles, axis=0)
    return RankIntervals(
        low=np.floor(lo).astype(np.int64),
        high=np.ceil(hi).astype(np.int64),
        percentiles=percentiles,
    )


def observed_win_rates(wins: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Empirical win rate of row run against column run.

    .. math:: \\hat P_{ij} = \\frac{W_{ij}}{W_{ij} + W_{ji}}

    Parameters
    ----------
    wins : array_like, shape (n, n)
        Win matrix (ties as 0.5 each way).

    Returns
    -------
    ndarray of float64, shape (n, n)
        Fraction in [0, 1]; NaN where the pair never met (including the diagonal).
    """
    w = np.asarray(wins, dtype=np.float64)
    games = w + w.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(games > 0, w / games, np.nan)
    np.fill_diagonal(rate, np.nan)
    return rate


def predicted_win_rates(ratings: npt.ArrayLike, scale: float = 400.0) -> npt.NDArray[np.float64]:
    """Bradley-Terry / Elo win probability of row run against column run.

    .. math:: P_{ij} = \\frac{1}{1 + 10^{(r_j - r_i)/s}}

    Parameters
    ----------
    ratings : array_like, shape (n,)
        Elo points.
    scale : float
        ``s`` in Elo points.

    Returns
    -------
    ndarray of float64, shape (n, n)
        Probabilities; the diagonal is 0.5.
    """
    r = np.asarray(ratings, dtype=np.float64)
    return 1.0 / (1.0 + 10.0 ** ((r[None, :] - r[:, None]) / scale))
