"""Annotator reliability: a crowd-BT accuracy per annotator, flags with reasons, vote weights.

Model (crowd-BT, Chen et al. 2013, "Pairwise ranking aggregation in a crowdsourced setting").
Annotator ``k`` reports the true preference with probability :math:`\\eta_k` and the reverse
otherwise:

.. math::

    P(i \\succ_k j) = \\eta_k\\,\\sigma(\\beta_i - \\beta_j)
                    + (1 - \\eta_k)\\,\\sigma(\\beta_j - \\beta_i).

A gold vote is a vote on a pair whose order is known (:math:`\\sigma = 1`): correct with
probability :math:`\\eta_k`.  :func:`annotator_reliability` alternates (EM, ``iterations``
rounds):

* E-step: for each decisive vote "``w`` beat ``l``" of annotator ``k``, the responsibility
  that it was an honest report,
  :math:`r = \\eta_k p_{wl} / (\\eta_k p_{wl} + (1-\\eta_k) p_{lw})`, with
  :math:`p_{wl} = \\sigma(\\hat\\beta_w - \\hat\\beta_l)`;
* M-step: :math:`\\hat\\eta_k` is the posterior mode under a Beta(``a``, ``b``) prior,

  .. math::

      \\hat\\eta_k = \\frac{a - 1 + \\sum_v r_v + c_k}{a + b - 2 + D_k + G_k}

  (:math:`D_k` decisive votes, :math:`G_k` gold votes, :math:`c_k` correct gold votes), and
  :math:`\\hat\\beta` the Bradley-Terry fit of every vote weighted by its annotator's weight
  (ties half a win each way, one virtual tie per run against strength 0 so it always exists).

Weight (how much one vote of annotator ``k`` counts in a weighted leaderboard):

.. math::

    w_k = \\max(0,\\ 2\\hat\\eta_k - 1)^2\\ (1 - |2\\ell_k - 1|)\\ (1 - f_k)

* :math:`(2\\eta - 1)^2` is the Fisher information a crowd-BT vote carries about
  :math:`\\beta_i - \\beta_j` at equal strengths, relative to a perfectly reliable vote
  (:math:`\\partial P / \\partial d = (2\\eta - 1)\\sigma'(d)`): a coin-flipper counts 0;
* :math:`\\ell_k = (L_k + 10) / (D_k + 20)` is the annotator's left-win share among decisive
  votes, shrunk towards 1/2 by 10 virtual votes each way: an always-left annotator counts 0,
  a 3-point position bias costs 6 %;
* :math:`f_k` is the share of the annotator's votes cast faster than the fast-vote floor
  (implausibly fast votes carry no information).

Flags (each with its reason, so a dashboard can say why):

* ``gold``: at least ``min_gold`` gold votes and gold accuracy below ``gold_threshold``;
* ``fast``: at least ``min_fast_votes`` timed votes, a share ``>= fast_share`` below the floor;
* ``position``: at least ``min_votes`` decisive votes, an exact two-sided binomial test of
  "left wins half the time" with p below ``position_alpha`` and a left share off 1/2 by at
  least ``position_margin``; the test counts whole votes, so ``L`` and ``D`` are rounded to
  the nearest integer first (a best-of-K vote's K - 1 implied pairs weigh 1/(K - 1) each, and
  a sum of thirds is 23.999... rather than 24, where the binomial is undefined);
* ``accuracy``: at least ``min_votes`` decisive and gold votes and :math:`\\hat\\eta_k` below
  ``accuracy_floor``.

Everything accepts a stack of campaigns (leading dimensions), so ``bench/efficiency.py`` runs
this same code on 200 simulated campaigns at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy
from scipy.special import expit

from .bradley_terry import fit_bradley_terry_batch

__all__ = [
    "FLAG_REASONS",
    "AnnotatorEvidence",
    "Reliability",
    "annotator_reliability",
]

#: Human-readable reason per flag.
FLAG_REASONS: dict[str, str] = {
    "gold": "gold accuracy below the campaign's threshold",
    "fast": "too many votes faster than the fast-vote floor",
    "position": "picks one side far more often than chance",
    "accuracy": "votes disagree with the consensus ranking (crowd-BT accuracy too low)",
}
#: Virtual decisive votes per side that shrink the left-win share towards 1/2.
LEFT_SHRINK = 10.0


@dataclass(frozen=True)
class AnnotatorEvidence:
    """What is known of ``A`` annotators in a campaign of ``n`` runs (shapes with ``...``
    leading dimensions for a stack of campaigns).

    Attributes
    ----------
    decisive : ndarray, shape (..., A, n, n)
        ``decisive[k, w, l]``: annotator ``k``'s live non-gold votes in which run ``w`` beat run
        ``l`` (units: votes).
    ties : ndarray, shape (..., A, n, n)
        Symmetric: ties and ``both_bad`` votes between the two runs.
    left_wins : ndarray, shape (..., A)
        Decisive votes won by the image shown on the left.
    gold_votes, gold_correct : ndarray, shape (..., A)
        Votes on gold pairs, and those matching the gold answer.
    timed_votes, fast_votes : ndarray, shape (..., A)
        Votes with a server-measured time, and those below the fast-vote floor.
    """

    decisive: npt.NDArray[np.float64]
    ties: npt.NDArray[np.float64]
    left_wins: npt.NDArray[np.float64]
    gold_votes: npt.NDArray[np.float64]
    gold_correct: npt.NDArray[np.float64]
    timed_votes: npt.NDArray[np.float64]
    fast_votes: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        d = np.asarray(self.decisive)
        if d.ndim < 3 or d.shape[-1] != d.shape[-2] or np.shape(self.ties) != d.shape:
            raise ValueError("decisive and ties must have shape (..., A, n, n)")
        for name in ("left_wins", "gold_votes", "gold_correct", "timed_votes", "fast_votes"):
            if np.shape(getattr(self, name)) != d.shape[:-2]:
                raise ValueError(f"{name} must have shape (..., A)")
        if (d < 0).any() or (np.asarray(self.ties) < 0).any():
            raise ValueError("vote counts must be non-negative")


@dataclass(frozen=True)
class Reliability:
    """Per-annotator estimates (shape (..., A) unless said otherwise).

    Attributes
    ----------
    accuracy : crowd-BT :math:`\\hat\\eta`, the probability of reporting the true preference.
    left_share : shrunk left-win share :math:`\\ell`.
    fast_share : share of timed votes below the floor (0 without timed votes).
    weight : :math:`w_k` of the module docstring, in [0, 1].
    flags : dict of bool arrays, one per key of :data:`FLAG_REASONS`.
    beta : ndarray, shape (..., n): the weighted Bradley-Terry log-strengths, nats, mean 0.
    """

    accuracy: npt.NDArray[np.float64]
    left_share: npt.NDArray[np.float64]
    fast_share: npt.NDArray[np.float64]
    weight: npt.NDArray[np.float64]
    flags: dict[str, npt.NDArray[np.bool_]]
    beta: npt.NDArray[np.float64]

    @property
    def flagged(self) -> npt.NDArray[np.bool_]:
        """Any flag raised."""
        return np.logical_or.reduce([f for f in self.flags.values()])

    def reasons(self, index: tuple[int, ...] | int) -> list[str]:
        """The flags of one annotator (index into the leading and annotator dimensions)."""
        return [name for name, flag in self.flags.items() if bool(flag[index])]


def _binom_two_sided(k: npt.NDArray[np.float64], n: npt.NDArray[np.float64]
                     ) -> npt.NDArray[np.float64]:
    """Two-sided binomial p-value of ``k`` successes in ``n`` at 1/2 (doubled smaller tail);
    whole numbers (SciPy's binomial is NaN for a non-integer ``n``)."""
    low = scipy.stats.binom.cdf(k, n, 0.5)
    high = scipy.stats.binom.sf(k - 1, n, 0.5)
    return np.where(n > 0, np.minimum(1.0, 2.0 * np.minimum(low, high)), 1.0)


def annotator_reliability(
    evidence: AnnotatorEvidence,
    *,
    accuracy_prior: tuple[float, float] = (4.0, 2.0),
    iterations: int = 15,
    min_gold: int = 5,
    gold_threshold: float = 0.7,
    min_fast_votes: int = 10,
    fast_share: float = 0.2,
    min_votes: int = 20,
    position_alpha: float = 1e-3,
    position_margin: float = 0.15,
    accuracy_floor: float = 0.65,
) -> Reliability:
    """Crowd-BT accuracy, weight and flags of every annotator (formulas: module docstring).

    ``accuracy_prior`` = (a, b) of the Beta prior on :math:`\\eta` (mode 0.75 by default:
    annotators are presumed mostly honest until the votes say otherwise).
    """
    dec = np.asarray(evidence.decisive, dtype=np.float64)
    ties = np.asarray(evidence.ties, dtype=np.float64)
    lead = dec.shape[:-3]
    a_count, n = dec.shape[-3], dec.shape[-1]
    dec = dec.reshape(-1, a_count, n, n)
    ties = ties.reshape(-1, a_count, n, n)
    left = np.asarray(evidence.left_wins, dtype=np.float64).reshape(-1, a_count)
    gold_n = np.asarray(evidence.gold_votes, dtype=np.float64).reshape(-1, a_count)
    gold_ok = np.asarray(evidence.gold_correct, dtype=np.float64).reshape(-1, a_count)
    timed = np.asarray(evidence.timed_votes, dtype=np.float64).reshape(-1, a_count)
    fast = np.asarray(evidence.fast_votes, dtype=np.float64).reshape(-1, a_count)
    a, b = accuracy_prior
    decided = dec.sum(axis=(2, 3))
    left_share = (left + LEFT_SHRINK) / (decided + 2 * LEFT_SHRINK)
    fast_frac = np.where(timed > 0, fast / np.maximum(timed, 1.0), 0.0)
    side = (1.0 - np.abs(2.0 * left_share - 1.0)) * (1.0 - fast_frac)

    eta = (a - 1.0 + gold_ok) / (a + b - 2.0 + gold_n)
    beta = np.zeros((dec.shape[0], n))
    for _ in range(iterations):
        weight = np.maximum(0.0, 2.0 * eta - 1.0) ** 2 * side
        wins = np.einsum("rk,rkij->rij", weight, dec + 0.5 * ties)
        beta = fit_bradley_terry_batch(wins, prior=1.0, init=beta, tol=1e-6).beta
        beta = beta - beta.mean(axis=1, keepdims=True)
        p = expit(beta[:, :, None] - beta[:, None, :])  # p[w, l] = P(w beats l)
        honest = eta[:, :, None, None] * p[:, None]
        resp = honest / np.maximum(honest + (1.0 - eta[:, :, None, None]) * (1.0 - p[:, None]),
                                   1e-300)
        agree = (dec * resp).sum(axis=(2, 3))
        eta = (a - 1.0 + agree + gold_ok) / (a + b - 2.0 + decided + gold_n)
    weight = np.maximum(0.0, 2.0 * eta - 1.0) ** 2 * side

    gold_acc = np.where(gold_n > 0, gold_ok / np.maximum(gold_n, 1.0), 1.0)
    raw_left = np.where(decided > 0, left / np.maximum(decided, 1.0), 0.5)
    # The position test counts whole votes: fractional weights (best-of-K pairs) sum to
    # 23.999... where 24 votes were cast.
    whole_left, whole_decided = np.rint(left), np.rint(decided)
    flags = {
        "gold": (gold_n >= min_gold) & (gold_acc < gold_threshold),
        "fast": (timed >= min_fast_votes) & (fast >= fast_share * timed),
        "position": ((whole_decided >= min_votes)
                     & (_binom_two_sided(whole_left, whole_decided) < position_alpha)
                     & (np.abs(raw_left - 0.5) >= position_margin)),
        "accuracy": (decided + gold_n >= min_votes) & (eta < accuracy_floor),
    }

    def shaped(x: npt.NDArray) -> npt.NDArray:
        return x.reshape(*lead, *x.shape[1:])

    return Reliability(accuracy=shaped(eta), left_share=shaped(left_share),
                       fast_share=shaped(fast_frac), weight=shaped(weight),
                       flags={k: shaped(v) for k, v in flags.items()}, beta=shaped(beta))
