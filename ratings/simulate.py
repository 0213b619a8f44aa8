"""Simulated pairwise votes with known Bradley-Terry strengths (tests, benchmarks, demos)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .counts import OUTCOME_A, OUTCOME_B, OUTCOME_BOTH_BAD, OUTCOME_TIE

__all__ = ["SimulatedVotes", "simulate_votes"]


@dataclass(frozen=True)
class SimulatedVotes:
    """Votes drawn by :func:`simulate_votes`.

    Attributes
    ----------
    a, b : ndarray of int64, shape (m,)
        Runs shown left (``a``) and right (``b``).
    outcomes : ndarray of int8, shape (m,)
        Outcome codes (:data:`ratings.counts.OUTCOME_A` ...).
    """

    a: npt.NDArray[np.int64]
    b: npt.NDArray[np.int64]
    outcomes: npt.NDArray[np.int8]


def simulate_votes(
    true_ratings: npt.ArrayLike,
    n_votes: int,
    rng: np.random.Generator,
    *,
    tie_rate: float = 0.0,
    both_bad_share: float = 0.0,
) -> SimulatedVotes:
    """Draw votes between uniformly random distinct pairs from a Bradley-Terry model.

    With :math:`P = 1/(1 + 10^{(r_b - r_a)/400})`, a vote is a tie with probability ``t`` and
    otherwise ``a`` wins with probability :math:`(P - t/2)/(1 - t)`, so the expected score of
    ``a`` (tie = 1/2) is exactly :math:`P`.  That keeps Bradley-Terry with half-counted ties
    unbiased for the true ratings.  A share ``both_bad_share`` of the ties is labelled
    ``both_bad`` instead.

    Parameters
    ----------
    true_ratings : array_like, shape (n,)
        Elo points.
    n_votes : int
    rng : numpy.random.Generator
    tie_rate : float
        Probability ``t`` of a tie; must satisfy :math:`t/2 \\le P \\le 1 - t/2` for all pairs.
    both_bad_share : float
        Fraction of ties reported as ``both_bad``.

    Returns
    -------
    SimulatedVotes
    """
    r = np.asarray(true_ratings, dtype=np.float64)
    n = r.size
    a = rng.integers(0, n, size=n_votes)
    # Draw b from the other n-1 runs without rejection: shift indices >= a by one.
    b = rng.integers(0, n - 1, size=n_votes)
    b += b >= a
    p = 1.0 / (1.0 + 10.0 ** ((r[b] - r[a]) / 400.0))
    p_win = (p - tie_rate / 2.0) / (1.0 - tie_rate)
    if (p_win < 0).any() or (p_win > 1).any():
        raise ValueError("tie_rate too large for these rating gaps")
    u = rng.random(n_votes)
    tie = u < tie_rate
    a_wins = rng.random(n_votes) < p_win
    out = np.where(a_wins, OUTCOME_A, OUTCOME_B).astype(np.int8)
    out[tie] = OUTCOME_TIE
    if both_bad_share > 0:
        out[tie & (rng.random(n_votes) < both_bad_share)] = OUTCOME_BOTH_BAD
    return SimulatedVotes(a=a.astype(np.int64), b=b.astype(np.int64), outcomes=out)
