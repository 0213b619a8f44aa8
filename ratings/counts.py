"""Turn individual pairwise judgments into count matrices and resampling cells.

Conventions used throughout :mod:`ratings`:

* Runs are indexed ``0 .. n-1``.
* A judgment is ``(a, b, outcome)`` with ``outcome`` one of ``"a"`` (run ``a`` won),
  ``"b"`` (run ``b`` won), ``"tie"`` or ``"both_bad"``.  Integer codes
  :data:`OUTCOME_A`, :data:`OUTCOME_B`, :data:`OUTCOME_TIE`, :data:`OUTCOME_BOTH_BAD`
  are accepted as well (they are faster for a million votes).
* ``"both_bad"`` counts as a tie unless ``both_bad="drop"``.
* ``wins[i, j]`` is the number of times ``i`` beat ``j``; a tie adds ``0.5`` to both
  ``wins[i, j]`` and ``wins[j, i]``, so ``wins[i, j] + wins[j, i]`` is the number of games
  between ``i`` and ``j``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "OUTCOME_A",
    "OUTCOME_B",
    "OUTCOME_BOTH_BAD",
    "OUTCOME_TIE",
    "PairCells",
    "aggregate_cells",
    "aggregate_counts",
    "cells_to_wins",
    "encode_outcomes",
]

OUTCOME_A = 0
OUTCOME_B = 1
OUTCOME_TIE = 2
OUTCOME_BOTH_BAD = 3

_LABELS = {"a": OUTCOME_A, "b": OUTCOME_B, "tie": OUTCOME_TIE, "both_bad": OUTCOME_BOTH_BAD}

BothBad = Literal["tie", "drop"]


def encode_outcomes(outcomes: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Map outcome labels to integer codes.

    Parameters
    ----------
    outcomes : array_like of str or int, shape (m,)
        ``"a"``, ``"b"``, ``"tie"``, ``"both_bad"`` or the integer codes 0, 1, 2, 3.

    Returns
    -------
    codes : ndarray of int8, shape (m,)
        :data:`OUTCOME_A` = 0, :data:`OUTCOME_B` = 1, :data:`OUTCOME_TIE` = 2,
        :data:`OUTCOME_BOTH_BAD` = 3.

    Raises
    ------
    ValueError
        If a label or code is unknown.
    """
    arr = np.asarray(outcomes)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int8)
    if arr.dtype.kind in "iub":
        codes = arr.astype(np.int8, copy=False)
        if codes.min() < 0 or codes.max() > OUTCOME_BOTH_BAD:
            raise ValueError("integer outcome codes must be in {0, 1, 2, 3}")
        return codes
    # One vectorised comparison per label is much faster than a Python dict lookup per vote.
    arr = arr.astype(str)
    codes = np.full(arr.shape, -1, dtype=np.int8)
    for label, code in _LABELS.items():
        codes[arr == label] = code
    if (codes < 0).any():
        bad = sorted(set(arr[codes < 0].tolist()))[:5]
        raise ValueError(f"unknown outcome label(s) {bad}; expected one of {sorted(_LABELS)}")
    return codes


def _validate(
    a_idx: npt.ArrayLike, b_idx: npt.ArrayLike, outcomes: npt.ArrayLike, n: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int8]]:
    a = np.asarray(a_idx, dtype=np.int64).ravel()
    b = np.asarray(b_idx, dtype=np.int64).ravel()
    o = encode_outcomes(outcomes).ravel()
    if not (a.shape == b.shape == o.shape):
        raise ValueError(f"length mismatch: a={a.size}, b={b.size}, outcomes={o.size}")
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n):
        raise ValueError(f"run indices must lie in [0, {n})")
    if (a == b).any():
        raise ValueError("a judgment compares a run with itself")
    return a, b, o


def _weights(weights: npt.ArrayLike | None, m: int) -> npt.NDArray[np.float64]:
    if weights is None:
        return np.ones(m)
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != (m,):
        raise ValueError("weights must have one entry per judgment")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("weights must be finite and non-negative")
    return w


def aggregate_counts(
    a_idx: npt.ArrayLike,
    b_idx: npt.ArrayLike,
    outcomes: npt.ArrayLike,
    n: int,
    *,
    both_bad: BothBad = "tie",
    weights: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float64]:
    """Aggregate judgments into a win-count matrix.

    .. math::

        W_{ij} = \\#\\{i \\text{ beat } j\\} + \\tfrac12 \\#\\{\\text{ties between } i, j\\}

    Parameters
    ----------
    a_idx, b_idx : array_like of int, shape (m,)
        Indices of the two runs shown in each judgment.
    outcomes : array_like of str or int, shape (m,)
        See :func:`encode_outcomes`.
    n : int
        Number of runs.
    both_bad : {"tie", "drop"}
        Whether a ``"both_bad"`` judgment counts as a tie or is ignored.
    weights : array_like of float, shape (m,), optional
        Multiplicity of each row (e.g. the ``count`` of a grouped SQL query).

    Returns
    -------
    wins : ndarray of float64, shape (n, n)
        Units: votes.  ``wins + wins.T`` is the number of games per pair; diagonal is zero.
    """
    a, b, o = _validate(a_idx, b_idx, outcomes, n)
    w = _weights(weights, a.size)
    if both_bad == "drop":
        keep = o != OUTCOME_BOTH_BAD
        a, b, o, w = a[keep], b[keep], o[keep], w[keep]
    elif both_bad != "tie":
        raise ValueError("both_bad must be 'tie' or 'drop'")
    # A vote for "a" credits (a, b), for "b" credits (b, a); a tie credits half to each.
    # bincount over flat cell indices is the fastest exact scatter-add numpy offers.
    win_a = np.where(o == OUTCOME_A, 1.0, np.where(o == OUTCOME_B, 0.0, 0.5)) * w
    win_b = w - win_a
    flat = np.bincount(a * n + b, weights=win_a, minlength=n * n)
    flat += np.bincount(b * n + a, weights=win_b, minlength=n * n)
    return flat.reshape(n, n)


@dataclass(frozen=True)
class PairCells:
    """Votes grouped into multinomial cells ``(pair, kind)``.

    Every unordered pair ``(i, j)`` with ``i < j`` that was compared at least once gets three
    cells: ``i`` won, ``j`` won, tie (``both_bad`` folded into tie, or dropped).  The vote
    multiset is then exactly a multinomial sample over these cells, which is what
    :mod:`ratings.bootstrap` resamples.

    Attributes
    ----------
    n : int
        Number of runs.
    i, j : ndarray of int64, shape (p,)
        The pairs, ``i < j``.
    counts : ndarray of float64, shape (p, 3)
        Columns: ``i`` won, ``j`` won, tie.  Units: votes (may be fractional with weights).
    """

    n: int
    i: npt.NDArray[np.int64]
    j: npt.NDArray[np.int64]
    counts: npt.NDArray[np.float64]

    @property
    def total(self) -> float:
        """Total number of votes ``N`` in all cells."""
        return float(self.counts.sum())

    def to_wins(self) -> npt.NDArray[np.float64]:
        """Win matrix ``W`` of shape (n, n) (see :func:`aggregate_counts`)."""
        return cells_to_wins(self, self.counts)


def aggregate_cells(
    a_idx: npt.ArrayLike,
    b_idx: npt.ArrayLike,
    outcomes: npt.ArrayLike,
    n: int,
    *,
    both_bad: BothBad = "tie",
    weights: npt.ArrayLike | None = None,
) -> PairCells:
    """Group judgments into ``(pair, outcome)`` cells for multinomial resampling.

    Parameters
    ----------
    a_idx, b_idx, outcomes, n, both_bad, weights
        As in :func:`aggregate_counts`.

    Returns
    -------
    PairCells
        ``cells.to_wins()`` equals ``aggregate_counts(...)`` for the same inputs.
    """
    a, b, o = _validate(a_idx, b_idx, outcomes, n)
    w = _weights(weights, a.size)
    if both_bad == "drop":
        keep = o != OUTCOME_BOTH_BAD
        a, b, o, w = a[keep], b[keep], o[keep], w[keep]
    elif both_bad != "tie":
        raise ValueError("both_bad must be 'tie' or 'drop'")
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    swapped = a > b
    # kind 0 = lower index won, 1 = higher index won, 2 = tie (both_bad folded in).
    kind = np.where(o >= OUTCOME_TIE, 2, o.astype(np.int64))
    kind = np.where((kind < 2) & swapped, 1 - kind, kind)
    flat = np.bincount((lo * n + hi) * 3 + kind, weights=w, minlength=n * n * 3)
    per_pair = flat.reshape(n * n, 3)
    pair_ids = np.flatnonzero(per_pair.sum(axis=1) > 0)
    return PairCells(
        n=n,
        i=(pair_ids // n).astype(np.int64),
        j=(pair_ids % n).astype(np.int64),
        counts=per_pair[pair_ids].astype(np.float64),
    )


def cells_to_wins(cells: PairCells, counts: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Rebuild win matrices from (possibly resampled) cell counts.

    Parameters
    ----------
    cells : PairCells
        Gives the pair layout.
    counts : array_like, shape (..., p, 3)
        Cell counts with arbitrary leading batch dimensions (e.g. ``(R, p, 3)`` draws).

    Returns
    -------
    wins : ndarray of float64, shape (..., n, n)
    """
    c = np.asarray(counts, dtype=np.float64)
    batch = c.shape[:-2]
    wins = np.zeros((*batch, cells.n, cells.n))
    half_tie = 0.5 * c[..., 2]
    # Each (i, j) occurs once, so plain fancy assignment is collision-free (no add.at needed).
    wins[..., cells.i, cells.j] = c[..., 0] + half_tie
    wins[..., cells.j, cells.i] = c[..., 1] + half_tie
    return wins
