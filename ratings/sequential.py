"""Sequential A/B test between two runs that stays valid under continuous monitoring.

A dashboard re-checks "is B better than A?" after every vote.  A fixed-sample binomial test
applied that way rejects a true null far more often than ``alpha`` (optional stopping).  We use
instead a *mixture sequential probability ratio* (Robbins 1970; Howard, Ramdas, McAuliffe &
Sekhon 2021): with :math:`S` = votes for B and :math:`F` = votes for A after :math:`n = S + F`
votes, and a Beta(a, b) mixing distribution over the win probability :math:`p` of B,

.. math::

    E_n = \\frac{\\int_0^1 p^{S} (1-p)^{F}\\, \\mathrm{Beta}(p; a, b)\\, dp}{(1/2)^{n}}
        = \\frac{B(a + S,\\ b + F)}{B(a, b)}\\, 2^{n}.

Under :math:`H_0: p = 1/2`, :math:`E_n` is a nonnegative martingale with :math:`E_0 = 1`, so by
Ville's inequality :math:`P(\\exists n: E_n \\ge 1/\\alpha) \\le \\alpha`.  Hence
:math:`p_n = \\min(1, 1/\\max_{k \\le n} E_k)` is an *always-valid p-value*: stopping the first
time it drops below ``alpha`` (after any number of looks) has type-I error at most ``alpha``.
The symmetric mixture puts mass on both sides of 1/2, so the test is two-sided; the sign of
:math:`S - F` gives the direction.

Ties.  ``ties="split"`` (default) counts a tie as half a vote for each side.  This stays valid:
given the mixing :math:`p`, a tie multiplies :math:`E` by :math:`2\\sqrt{p(1-p)} \\le 1`, and if
:math:`P(\\text{B wins}) = P(\\text{A wins}) = (1-t)/2` the expected one-vote factor is
:math:`(1-t) + 2t\\sqrt{p(1-p)} \\le 1`, a supermartingale.  Ties therefore only make the test
more conservative.  ``ties="drop"`` conditions on decisive votes (exact Bernoulli(1/2) null).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special

__all__ = ["SequentialResult", "always_valid_p_path", "log_e_value", "sequential_ab_test"]

Decision = Literal["b_better", "a_better", "keep_rating"]


@dataclass(frozen=True)
class SequentialResult:
    """Result of :func:`sequential_ab_test`.

    Attributes
    ----------
    n : float
        Votes counted (ties count 1 with ``split``, 0 with ``drop``).
    p_b_better : float
        Posterior :math:`P(p_B > 1/2)` under a Beta(1, 1) prior (a probability, not a test).
    always_valid_p : float
        :math:`\\min(1, 1/E_n)`; valid at any data-dependent stopping time.
    decision : {"b_better", "a_better", "keep_rating"}
        ``keep_rating`` means "not enough evidence yet, keep collecting votes".
    message : str
        One human-readable sentence for the dashboard.
    """

    n: float
    p_b_better: float
    always_valid_p: float
    decision: Decision
    message: str


def log_e_value(
    wins_b: npt.ArrayLike,
    wins_a: npt.ArrayLike,
    *,
    prior_a: float = 1.0,
    prior_b: float = 1.0,
) -> npt.NDArray[np.float64]:
    """Log of the Beta-mixture e-value against :math:`p = 1/2`.

    .. math:: \\log E = \\log B(a + S, b + F) - \\log B(a, b) + (S + F) \\log 2

    Parameters
    ----------
    wins_b, wins_a : array_like
        :math:`S` and :math:`F` (may be fractional, e.g. half-ties); broadcast together.
    prior_a, prior_b : float
        Beta mixing parameters ``a``, ``b`` (Beta(1, 1) = uniform).

    Returns
    -------
    ndarray of float64
        Natural log of the e-value (nats).
    """
    s = np.asarray(wins_b, dtype=np.float64)
    f = np.asarray(wins_a, dtype=np.float64)
    return (
        special.betaln(prior_a + s, prior_b + f)
        - special.betaln(prior_a, prior_b)
        + (s + f) * math.log(2.0)
    )


def always_valid_p_path(
    b_scores: npt.ArrayLike, *, prior_a: float = 1.0, prior_b: float = 1.0
) -> npt.NDArray[np.float64]:
    """Always-valid p-value after each vote of a sequence (running-max e-value).

    .. math:: p_n = \\min\\left(1,\\ 1 / \\max_{k \\le n} E_k\\right)

    Parameters
    ----------
    b_scores : array_like, shape (..., m)
        Score of B per vote in time order along the last axis: 1 (B won), 0 (A won),
        0.5 (tie, split).  Leading axes are independent sequences.
    prior_a, prior_b : float
        Beta mixing parameters.

    Returns
    -------
    ndarray of float64, shape (..., m)
        Non-increasing in ``n``.
    """
    x = np.asarray(b_scores, dtype=np.float64)
    s = np.cumsum(x, axis=-1)
    f = np.cumsum(1.0 - x, axis=-1)
    log_e = np.maximum.accumulate(log_e_value(s, f, prior_a=prior_a, prior_b=prior_b), axis=-1)
    return np.minimum(1.0, np.exp(-log_e))


def sequential_ab_test(
    wins_b: float,
    wins_a: float,
    ties: float = 0,
    *,
    alpha: float = 0.05,
    tie_handling: Literal["split", "drop"] = "split",
    prior_a: float = 1.0,
    prior_b: float = 1.0,
) -> SequentialResult:
    """Anytime-valid comparison of run B against run A from their head-to-head counts.

    ``always_valid_p`` is :math:`\\min(1, 1/E_n)` with the Beta-mixture e-value of the module
    docstring.  Checking it after every vote and stopping the first time it is ``<= alpha``
    keeps the false-positive rate at most ``alpha`` (Ville's inequality).  The reported
    probability is the Bayesian posterior

    .. math:: P(p_B > 1/2 \\mid S, F) = 1 - I_{1/2}(1 + S,\\ 1 + F)

    under a uniform Beta(1, 1) prior (:math:`I` = regularised incomplete beta function); it is
    descriptive and does not drive the decision.

    A monitoring caller should freeze the outcome the first time ``decision`` is not
    ``"keep_rating"`` (that is the stopping time the guarantee is about); with the full vote
    sequence, :func:`always_valid_p_path` gives the running-minimum p-value directly.

    Parameters
    ----------
    wins_b, wins_a : float
        Votes won by B and by A (counts).
    ties : float
        Tied votes (``both_bad`` included if the caller treats it as a tie).
    alpha : float
        Type-I error bound under continuous monitoring.
    tie_handling : {"split", "drop"}
        Count a tie as half a win for each side (conservative, valid) or ignore ties.
    prior_a, prior_b : float
        Beta mixing parameters of the e-value (not of the posterior).

    Returns
    -------
    SequentialResult
    """
    if min(wins_b, wins_a, ties) < 0:
        raise ValueError("counts must be non-negative")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if tie_handling == "split":
        s, f = wins_b + ties / 2.0, wins_a + ties / 2.0
    elif tie_handling == "drop":
        s, f = float(wins_b), float(wins_a)
    else:
        raise ValueError("tie_handling must be 'split' or 'drop'")
    n = s + f
    log_e = float(log_e_value(s, f, prior_a=prior_a, prior_b=prior_b))
    p_value = min(1.0, math.exp(-log_e)) if log_e > -700 else 1.0
    # P(p_B > 1/2) = survival function of Beta(1 + S, 1 + F) at 1/2.
    p_b_better = float(special.betaincc(1.0 + s, 1.0 + f, 0.5))
    decision: Decision
    if p_value <= alpha and s != f:
        decision = "b_better" if s > f else "a_better"
    else:
        decision = "keep_rating"
    votes = f"{n:g} vote" + ("" if n == 1 else "s")
    sentence = f"B beats A with probability {p_b_better:.2f} after {votes}"
    if decision == "b_better":
        verdict = f"B is better (always-valid p = {p_value:.3g} <= {alpha:g})."
    elif decision == "a_better":
        verdict = f"A is better (always-valid p = {p_value:.3g} <= {alpha:g})."
    else:
        verdict = f"no decision yet, keep rating (always-valid p = {p_value:.3g} > {alpha:g})."
    return SequentialResult(
        n=n,
        p_b_better=p_b_better,
        always_valid_p=p_value,
        decision=decision,
        message=f"{sentence}; {verdict}",
    )
