"""One leaderboard from pairwise and K-wise votes together: Plackett-Luce with a bootstrap over
counted vote patterns.

Votes arrive grouped (a campaign has many identical votes: the same pair and outcome, the same
K runs and picks), as :class:`ratings.Rankings` entries whose ``votes`` name a *pattern* and a
count per pattern.  The point fit weighs entry ``e`` of pattern ``u`` by
:math:`w_e c_u` (``w_e`` is 1, or 1/2 for each order of a tie).  A bootstrap round resamples the
:math:`M = \\sum_u c_u` votes with replacement, which is the same as drawing pattern counts
:math:`c^{(b)} \\sim \\mathrm{Multinomial}(M, c / M)`, and refits with weights
:math:`w_e c^{(b)}_u`; rounds run as batched MM (:func:`ratings.fit_plackett_luce_batch`) in
chunks so memory stays at ``chunk x entries`` floats.  On pairwise votes alone this is the
Bradley-Terry leaderboard (Plackett-Luce with two runs per vote is Bradley-Terry).

Ratings are Elo points (400 / ln 10 per nat), mean 1000; intervals are percentile intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .bradley_terry import anchor_ratings

# _Stages: the same flattening the fits use, for Hunter's condition per resample.
from .plackett_luce import Rankings, _Stages, fit_plackett_luce, fit_plackett_luce_batch

__all__ = ["JointBootstrap", "bootstrap_joint"]


@dataclass(frozen=True)
class JointBootstrap:
    """Plackett-Luce ratings of counted vote patterns with percentile-bootstrap intervals.

    Attributes
    ----------
    ratings, lower, upper, std : ndarray of float64, shape (n,)
        Point ratings, percentile bounds and bootstrap standard error, Elo points.
    samples : ndarray of float64, shape (R, n)
    fallback_rounds : int
        Rounds fitted with the fallback pseudo-count (their resample had no finite MLE).
    mle_exists : bool
    warnings : list of str
    """

    ratings: npt.NDArray[np.float64]
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]
    samples: npt.NDArray[np.float64] = field(repr=False)
    fallback_rounds: int = 0
    mle_exists: bool = True
    warnings: list[str] = field(default_factory=list)


def bootstrap_joint(rankings: Rankings, counts: npt.ArrayLike, *, rounds: int = 1000,
                    seed: int | None = None, percentiles: tuple[float, float] = (2.5, 97.5),
                    chunk: int = 64) -> JointBootstrap:
    """Fit counted patterns (module docstring) and bootstrap them ``rounds`` times.

    Parameters
    ----------
    rankings : Rankings
        Entries with their own weights (1, or 1/2 per order of a tie) and ``votes`` naming the
        pattern of each entry, 0..P-1.
    counts : array_like, shape (P,)
        Votes per pattern (non-negative; fractional counts are rounded for the resample size).
    """
    c = np.asarray(counts, dtype=np.float64)
    unit = np.asarray(rankings.votes, dtype=np.int64)
    if unit.size and (unit.max() >= c.size or (c < 0).any()):
        raise ValueError("counts needs one non-negative entry per pattern")
    weighted = Rankings(rankings.n, rankings.shown, rankings.picks,
                        np.asarray(rankings.weights) * c[unit], rankings.votes)
    point = fit_plackett_luce(weighted)
    n = rankings.n
    total = round(float(c.sum()))
    if rounds <= 0 or total == 0:
        return JointBootstrap(point.ratings, point.ratings.copy(), point.ratings.copy(),
                              np.zeros(n), np.tile(point.ratings, (max(rounds, 0), 1)), 0,
                              point.mle_exists, list(point.warnings))
    rng = np.random.default_rng(seed)
    stages = _Stages.of(rankings)
    samples = np.empty((rounds, n))
    fallback = 0
    for start in range(0, rounds, chunk):
        size = min(chunk, rounds - start)
        draws = rng.multinomial(total, c / c.sum(), size=size).astype(np.float64)
        beta = fit_plackett_luce_batch(rankings, draws[:, unit], init=point.beta, tol=1e-7)
        samples[start:start + size] = anchor_ratings(beta)
        # A round without a finite MLE is pulled in by the fallback prior: count them as the
        # Bradley-Terry bootstrap does (resamples that lost every win or loss of some run).
        fallback += sum(not stages.strongly_connected(draws[r, unit][stages.vote] * stages.weight)
                        for r in range(size))
    lower, upper = np.percentile(samples, percentiles, axis=0)
    warnings = list(point.warnings)
    if fallback:
        warnings.append(f"{fallback} of {rounds} bootstrap rounds had no finite maximum-"
                        "likelihood estimate and used the pseudo-count prior")
    return JointBootstrap(point.ratings, lower, upper, samples.std(axis=0, ddof=1), samples,
                          fallback, point.mle_exists, warnings)
