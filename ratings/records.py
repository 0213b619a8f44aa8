"""Per-run win / loss / tie records and win rates from vote cells.

A tie (and ``both_bad``, folded into the tie cell by :func:`ratings.counts.aggregate_cells`)
counts half a win for each side in the win rate, as in the win matrix of
:mod:`ratings.counts`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .counts import PairCells

__all__ = ["RunRecords", "run_records"]


@dataclass(frozen=True)
class RunRecords:
    """Raw head-to-head record of every run.

    Attributes
    ----------
    wins, losses, ties : ndarray of float64, shape (n,)
        Votes the run won, lost and tied (units: votes; fractional with weighted cells).
    """

    wins: npt.NDArray[np.float64]
    losses: npt.NDArray[np.float64]
    ties: npt.NDArray[np.float64]

    @property
    def games(self) -> npt.NDArray[np.float64]:
        """Votes the run took part in: ``wins + losses + ties``."""
        return self.wins + self.losses + self.ties

    @property
    def win_rate(self) -> npt.NDArray[np.float64]:
        """Share of its games a run won, a tie counting half.

        .. math:: \\mathrm{win\\_rate}_i = \\frac{w_i + t_i / 2}{w_i + l_i + t_i}

        A fraction in [0, 1]; NaN for a run without games.
        """
        games = self.games
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(games > 0, (self.wins + 0.5 * self.ties) / games, np.nan)


def run_records(cells: PairCells) -> RunRecords:
    """Sum the cells ``(i won, j won, tie)`` of every pair into per-run records.

    .. math::

        w_i = \\sum_{j} c_{ij}^{\\,i\\,\\mathrm{won}}, \\qquad
        l_i = \\sum_{j} c_{ij}^{\\,j\\,\\mathrm{won}}, \\qquad
        t_i = \\sum_{j} c_{ij}^{\\,\\mathrm{tie}}

    over the pairs that contain run ``i`` (in either position).

    Parameters
    ----------
    cells : PairCells
        From :func:`ratings.counts.aggregate_cells`.

    Returns
    -------
    RunRecords
        ``records.games`` equals ``(W + W.T).sum(axis=1)`` for ``W = cells.to_wins()``.
    """
    n = cells.n
    i_won, j_won, tied = cells.counts[:, 0], cells.counts[:, 1], cells.counts[:, 2]

    def per_run(on_i: npt.NDArray[np.float64], on_j: npt.NDArray[np.float64]
                ) -> npt.NDArray[np.float64]:
        return (np.bincount(cells.i, weights=on_i, minlength=n)
                + np.bincount(cells.j, weights=on_j, minlength=n))

    return RunRecords(
        wins=per_run(i_won, j_won),
        losses=per_run(j_won, i_won),
        ties=per_run(tied, tied),
    )
