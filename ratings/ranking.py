"""Ranks with confidence and win-rate matrices for the leaderboard."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["observed_win_rates", "predicted_win_rates", "rank_with_confidence"]


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
