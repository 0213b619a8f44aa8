"""Online Elo ratings: the cheap, order-dependent "live" view of a campaign.

Elo is *not* the statistic to report (it depends on vote order and K); the leaderboard uses
Bradley-Terry (:mod:`ratings.bradley_terry`).  Elo is kept because it can be updated one vote
at a time while a campaign is running.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .counts import OUTCOME_A, OUTCOME_B, OUTCOME_BOTH_BAD, BothBad, _validate

__all__ = ["EloResult", "elo_expected", "online_elo"]


@dataclass(frozen=True)
class EloResult:
    """Result of :func:`online_elo`.

    Attributes
    ----------
    ratings : ndarray of float64, shape (n,)
        Final Elo ratings (Elo points).
    games : ndarray of int64, shape (n,)
        Number of judgments each run took part in (after ``both_bad`` handling).
    """

    ratings: npt.NDArray[np.float64]
    games: npt.NDArray[np.int64]


def elo_expected(r_a: float, r_b: float, scale: float = 400.0) -> float:
    """Expected score of ``a`` against ``b``.

    .. math:: E_a = \\frac{1}{1 + 10^{(r_b - r_a)/s}}

    Parameters
    ----------
    r_a, r_b : float
        Ratings in Elo points.
    scale : float
        ``s``; 400 means a 400-point gap is 10:1 odds.

    Returns
    -------
    float
        Probability-like expected score in [0, 1].
    """
    return 1.0 / (1.0 + 10.0 ** ((r_b - r_a) / scale))


def online_elo(
    a_idx: npt.ArrayLike,
    b_idx: npt.ArrayLike,
    outcomes: npt.ArrayLike,
    n: int,
    *,
    k: float = 32.0,
    initial: float = 1000.0,
    scale: float = 400.0,
    both_bad: BothBad = "tie",
) -> EloResult:
    """Sequential Elo over judgments in the given (time) order.

    For each judgment, with score :math:`S_a = 1` (a won), 0 (b won) or 0.5 (tie):

    .. math::

        E_a = \\frac{1}{1 + 10^{(r_b - r_a)/s}}, \\qquad
        r_a \\leftarrow r_a + K (S_a - E_a), \\qquad r_b \\leftarrow r_b - K (S_a - E_a)

    Parameters
    ----------
    a_idx, b_idx : array_like of int, shape (m,)
        Runs shown, **sorted by time** (the result depends on order).
    outcomes : array_like of str or int, shape (m,)
        See :func:`ratings.counts.encode_outcomes`.
    n : int
        Number of runs.
    k : float
        K-factor, Elo points moved by a fully unexpected result.
    initial : float
        Starting rating of every run (Elo points).
    scale : float
        Logistic scale ``s`` (Elo points).
    both_bad : {"tie", "drop"}
        Count ``both_bad`` as a tie or skip it.

    Returns
    -------
    EloResult
    """
    a, b, o = _validate(a_idx, b_idx, outcomes, n)
    if both_bad == "drop":
        keep = o != OUTCOME_BOTH_BAD
        a, b, o = a[keep], b[keep], o[keep]
    score = np.where(o == OUTCOME_A, 1.0, np.where(o == OUTCOME_B, 0.0, 0.5))
    ratings = [float(initial)] * n
    # Plain Python floats in a list: the update is inherently sequential, and list/float ops
    # are several times faster than numpy scalar indexing inside the loop (~1 s per 1M votes).
    for ia, ib, s in zip(a.tolist(), b.tolist(), score.tolist(), strict=True):
        ra, rb = ratings[ia], ratings[ib]
        delta = k * (s - 1.0 / (1.0 + 10.0 ** ((rb - ra) / scale)))
        ratings[ia] = ra + delta
        ratings[ib] = rb - delta
    games = np.bincount(a, minlength=n) + np.bincount(b, minlength=n)
    return EloResult(ratings=np.asarray(ratings), games=games.astype(np.int64))
