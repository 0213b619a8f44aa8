"""Where a metric judge and the human majority disagree: agreement per pair of runs.

:func:`ratings.agreement.pair_agreement` gives one agreement rate (with its interval) over all
units; this module splits the same count by the pair of runs a unit compares, to show which
pairs the metric gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .counts import OUTCOME_TIE, encode_outcomes

__all__ = ["PairwiseAgreement", "agreement_by_pair"]


@dataclass(frozen=True)
class PairwiseAgreement:
    """Judge-vs-human agreement per ordered pair of runs ``(a, b)`` as shown.

    Attributes
    ----------
    a, b : ndarray of int64, shape (p,)
        Run indices of the pairs with at least one decisive unit, sorted by ``(a, b)``.
    n : ndarray of int64, shape (p,)
        Decisive units (both the human majority and the judge picked a side).
    agree : ndarray of int64, shape (p,)
        Of those, units where the judge picked the human majority's side.
    """

    a: npt.NDArray[np.int64]
    b: npt.NDArray[np.int64]
    n: npt.NDArray[np.int64]
    agree: npt.NDArray[np.int64]

    @property
    def rate(self) -> npt.NDArray[np.float64]:
        """``agree / n`` per pair, a fraction in [0, 1] (every listed pair has ``n >= 1``)."""
        return self.agree / self.n


def agreement_by_pair(
    human: npt.ArrayLike,
    judge: npt.ArrayLike,
    a_idx: npt.ArrayLike,
    b_idx: npt.ArrayLike,
    n_runs: int,
) -> PairwiseAgreement:
    """Count decisive units and agreements per ordered pair of runs.

    .. math::

        n_{ab} = \\#\\{u \\in (a, b) : h_u \\ne \\mathrm{tie},\\ j_u \\ne \\mathrm{tie}\\}, \\qquad
        \\mathrm{agree}_{ab} = \\#\\{u \\in (a, b) : h_u = j_u \\ne \\mathrm{tie}\\}

    Summed over all pairs these are ``n`` and ``agree`` of
    :func:`ratings.agreement.pair_agreement` (``decisive_only=True``) on the same units.

    Parameters
    ----------
    human, judge : array_like of str or int, shape (u,)
        Human majority and judge outcome per unit (``both_bad`` = tie).
    a_idx, b_idx : array_like of int, shape (u,)
        Runs the unit compares, in the order shown (indices in ``[0, n_runs)``).
    n_runs : int
        Number of runs.

    Returns
    -------
    PairwiseAgreement
    """
    h = np.minimum(encode_outcomes(human), OUTCOME_TIE)
    j = np.minimum(encode_outcomes(judge), OUTCOME_TIE)
    a = np.asarray(a_idx, dtype=np.int64).ravel()
    b = np.asarray(b_idx, dtype=np.int64).ravel()
    if not (h.shape == j.shape == a.shape == b.shape):
        raise ValueError("human, judge, a_idx and b_idx must have the same length")
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n_runs):
        raise ValueError(f"run indices must lie in [0, {n_runs})")
    decisive = (h != OUTCOME_TIE) & (j != OUTCOME_TIE)
    key = a[decisive] * n_runs + b[decisive]
    same = (h == j)[decisive]
    pairs, inverse = np.unique(key, return_inverse=True)
    n = np.bincount(inverse, minlength=pairs.size).astype(np.int64)
    agree = np.bincount(inverse, weights=same, minlength=pairs.size).astype(np.int64)
    return PairwiseAgreement(a=pairs // n_runs, b=pairs % n_runs, n=n, agree=agree)
