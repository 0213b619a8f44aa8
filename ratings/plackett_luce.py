"""Plackett-Luce ratings from K-wise votes (best of K, full rankings) and pairwise votes together.

Model.  Run ``i`` has strength :math:`\\gamma_i = e^{\\beta_i}`.  A vote shows a set ``S`` of runs
and records the runs picked from it in order, best first (one pick for "best of K", ``K - 1``
picks for a full ranking; runs never picked stay unordered).  Each pick is a *stage*: from the
runs still available :math:`R_t` the annotator picks :math:`c_t` with probability

.. math:: P(c_t \\mid R_t) = \\frac{\\gamma_{c_t}}{\\sum_{k \\in R_t} \\gamma_k}

and the log-likelihood of weighted stages (weight :math:`w_t`) is

.. math::

    \\ell(\\gamma) = \\sum_t w_t \\Big[\\log\\gamma_{c_t}
                  - \\log\\sum_{k\\in R_t}\\gamma_k\\Big].

A pairwise vote is one stage with :math:`|R_t| = 2`, where this is exactly Bradley-Terry
(:math:`P = \\sigma(\\beta_i - \\beta_j)`), so pairwise and K-wise votes fit one scale together.

Ties.  Plackett-Luce has no ties.  A tie (or ``both_bad``) between two runs is entered as both
orders, each with weight 1/2 (:func:`rankings_from_pairs`): the likelihood is then that of
Bradley-Terry with half a win each way, the convention of :mod:`ratings.counts`, so on pairwise
data the fit equals :func:`ratings.fit_bradley_terry`.  A K-wise vote with tied runs at one
place is entered the same way: every order of the tied runs, weights summing to the vote's
weight (:func:`expand_ties`).  A K-wise vote without a pick (skipped) carries no information
and is not a ranking.

Solver.  Hunter's (2004) minorization-maximization: with :math:`W_i = \\sum_t w_t[c_t = i]`,

.. math::

    \\gamma_i \\leftarrow \\frac{W_i}
        {\\sum_t w_t\\,[i \\in R_t] \\big/ \\sum_{k \\in R_t}\\gamma_k},

which increases :math:`\\ell` at every step and converges to the MLE when it exists: when the
directed graph with an edge ``i -> j`` whenever ``i`` was picked while ``j`` was available is
strongly connected (Hunter 2004, Assumption 1).  Otherwise, as in
:func:`ratings.fit_bradley_terry`, a pseudo-count prior is added and reported: ``prior``
virtual games per run, half won, against a reference run of fixed strength 1, i.e. in the MM
step :math:`W_i \\mathrel{+}= \\lambda/2` and the denominator gains :math:`\\lambda/(\\gamma_i+1)`.

Ratings are reported on the Elo scale, :math:`r_i = \\frac{400}{\\ln 10}\\beta_i + c`, mean 1000.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.sparse.csgraph import connected_components

from .bradley_terry import DEFAULT_FALLBACK_PRIOR, anchor_ratings
from .counts import OUTCOME_A, OUTCOME_B, encode_outcomes

__all__ = [
    "PLBootstrap",
    "PLResult",
    "Rankings",
    "bootstrap_plackett_luce",
    "expand_ties",
    "fit_plackett_luce",
    "fit_plackett_luce_batch",
    "rankings_from_pairs",
]


@dataclass(frozen=True)
class Rankings:
    """Weighted K-wise votes between ``n`` runs.

    Attributes
    ----------
    n : int
        Number of runs.
    shown : list of tuple of int
        The runs each vote showed (2 to K distinct runs).
    picks : list of tuple of int
        The runs picked from it, best first (a prefix of a ranking of ``shown``; at least one,
        at most ``len(shown) - 1`` needed: the last run of a full ranking adds nothing).
    weights : ndarray of float64, shape (m,)
        Multiplicity of each entry (1 for a plain vote, 1/2 for each order of a tie).
    votes : ndarray of int64, shape (m,), optional
        The vote each entry comes from: the orders of one tied vote share it, and the bootstrap
        resamples votes, not entries.  Default: every entry its own vote.
    """

    n: int
    shown: list[tuple[int, ...]]
    picks: list[tuple[int, ...]]
    weights: npt.NDArray[np.float64]
    votes: npt.NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        if not (len(self.shown) == len(self.picks) == len(self.weights)):
            raise ValueError("shown, picks and weights need one entry per vote")
        for shown, picks in zip(self.shown, self.picks, strict=True):
            if len(set(shown)) != len(shown) or len(shown) < 2:
                raise ValueError(f"a vote shows at least two distinct runs, got {shown}")
            if not picks or len(set(picks)) != len(picks) or not set(picks) <= set(shown):
                raise ValueError(f"picks {picks} must be distinct runs of the shown {shown}")
            if min(shown) < 0 or max(shown) >= self.n:
                raise ValueError(f"run indices must lie in [0, {self.n})")
        w = np.asarray(self.weights, dtype=np.float64)
        if (w < 0).any() or not np.isfinite(w).all():
            raise ValueError("weights must be finite and non-negative")
        if self.votes is None:
            object.__setattr__(self, "votes", np.arange(len(self.picks), dtype=np.int64))
        elif len(self.votes) != len(self.picks):
            raise ValueError("votes needs one entry per ranking")

    @classmethod
    def of(cls, n: int, rankings: Sequence[Sequence[int]],
           shown: Sequence[Sequence[int]] | None = None,
           weights: npt.ArrayLike | None = None) -> Rankings:
        """Full rankings (best first), or picks from ``shown`` sets when given."""
        picks = [tuple(int(x) for x in r) for r in rankings]
        sets = picks if shown is None else [tuple(int(x) for x in s) for s in shown]
        w = np.ones(len(picks)) if weights is None else np.asarray(weights, dtype=np.float64)
        return cls(n, sets, picks, w)

    def __add__(self, other: Rankings) -> Rankings:
        if other.n != self.n:
            raise ValueError("rankings of different numbers of runs")
        first = np.asarray(self.votes)
        offset = int(first.max()) + 1 if first.size else 0
        return Rankings(self.n, self.shown + other.shown, self.picks + other.picks,
                        np.concatenate([self.weights, other.weights]),
                        np.concatenate([first, np.asarray(other.votes) + offset]))

    def __len__(self) -> int:
        return len(self.picks)


def rankings_from_pairs(a_idx: npt.ArrayLike, b_idx: npt.ArrayLike, outcomes: npt.ArrayLike,
                        n: int) -> Rankings:
    """Pairwise votes as two-run rankings; a tie (or ``both_bad``) is both orders at weight 1/2.

    Outcomes as in :func:`ratings.encode_outcomes` (``"a"``: run ``a`` won).
    """
    a = np.asarray(a_idx, dtype=np.int64).ravel()
    b = np.asarray(b_idx, dtype=np.int64).ravel()
    o = encode_outcomes(outcomes).ravel()
    shown, picks, weights, votes = [], [], [], []
    for k, (x, y, code) in enumerate(zip(a.tolist(), b.tolist(), o.tolist(), strict=True)):
        if code in (OUTCOME_A, OUTCOME_B):
            shown.append((x, y))
            picks.append((x,) if code == OUTCOME_A else (y,))
            weights.append(1.0)
            votes.append(k)
        else:
            shown += [(x, y), (x, y)]
            picks += [(x,), (y,)]
            weights += [0.5, 0.5]
            votes += [k, k]
    return Rankings(n, shown, picks, np.array(weights), np.array(votes, dtype=np.int64))


def expand_ties(n: int, groups: Sequence[Sequence[Sequence[int]]],
                shown: Sequence[Sequence[int]] | None = None,
                weights: npt.ArrayLike | None = None) -> Rankings:
    """Rankings given as groups of tied runs, best group first, as weighted strict rankings.

    A vote ``((3,), (1, 4))`` (3 best, 1 and 4 tied next) becomes ``(3, 1, 4)`` and
    ``(3, 4, 1)`` at half its weight each: every order of every tied group, weights
    :math:`w / \\prod_g |g|!`.  ``shown`` defaults to the runs in the groups.
    """
    base = np.ones(len(groups)) if weights is None else np.asarray(weights, dtype=np.float64)
    out_shown, out_picks, out_w, out_votes = [], [], [], []
    for k, vote in enumerate(groups):
        orders = [list(itertools.permutations(g)) for g in vote]
        share = base[k] / math.prod(len(o) for o in orders)
        runs = tuple(int(x) for g in vote for x in g)
        seen = runs if shown is None else tuple(int(x) for x in shown[k])
        for combo in itertools.product(*orders):
            ranking = tuple(int(x) for g in combo for x in g)
            # A full ranking's last pick is forced: drop it (no stage, no information).
            out_picks.append(ranking[:-1] if len(ranking) == len(seen) else ranking)
            out_shown.append(seen)
            out_w.append(share)
            out_votes.append(k)
    return Rankings(n, out_shown, out_picks, np.array(out_w), np.array(out_votes, dtype=np.int64))


@dataclass(frozen=True)
class _Stages:
    """Rankings flattened into stages: CSR of the available runs, the pick, the weight."""

    n: int
    members: npt.NDArray[np.int64]  # available runs of all stages, concatenated
    starts: npt.NDArray[np.int64]  # start of each stage in ``members``
    sizes: npt.NDArray[np.int64]
    chosen: npt.NDArray[np.int64]
    vote: npt.NDArray[np.int64]  # the vote each stage belongs to
    weight: npt.NDArray[np.float64]  # the vote's weight

    @classmethod
    def of(cls, rankings: Rankings) -> _Stages:
        members, sizes, chosen, vote, weight = [], [], [], [], []
        for k, (shown, picks) in enumerate(zip(rankings.shown, rankings.picks, strict=True)):
            left = list(shown)
            for pick in picks:
                if len(left) < 2:
                    break  # the last run of a full ranking: forced
                members += left
                sizes.append(len(left))
                chosen.append(pick)
                vote.append(k)
                weight.append(float(rankings.weights[k]))
                left.remove(pick)
        size = np.array(sizes, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
        return cls(rankings.n, np.array(members, dtype=np.int64), starts, size,
                   np.array(chosen, dtype=np.int64), np.array(vote, dtype=np.int64),
                   np.array(weight, dtype=np.float64))

    def strongly_connected(self, weight: npt.NDArray[np.float64]) -> bool:
        """Hunter's Assumption 1 on the stages with positive weight."""
        if self.n < 2:
            return True
        edges = np.zeros((self.n, self.n), dtype=bool)
        live = weight > 0
        owner = np.repeat(np.arange(self.sizes.size), self.sizes)
        keep = live[owner]
        edges[self.chosen[owner[keep]], self.members[keep]] = True
        np.fill_diagonal(edges, False)
        count, _ = connected_components(edges, directed=True, connection="strong")
        return bool(count == 1)


def _mm(stages: _Stages, weight: npt.NDArray[np.float64], prior: npt.NDArray[np.float64],
        beta0: npt.NDArray[np.float64], tol: float, max_iter: int
        ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Hunter's MM, batched over rounds: ``weight`` (R, stages), ``prior`` (R,), ``beta0``
    (R, n); returns log-strengths (R, n), converged (R,), iterations (R,).

    A round without prior is scale free: its strengths are shifted by their maximum before
    exponentiating (no overflow) and its log-strengths re-centred after each step.  With a prior
    the reference run (strength 1) fixes the scale, so nothing is shifted.
    """
    r_total, n = beta0.shape
    owner = np.repeat(np.arange(stages.sizes.size), stages.sizes)
    wins = np.stack([np.bincount(stages.chosen, weights=weight[r], minlength=n)
                     for r in range(r_total)]) + prior[:, None] / 2.0
    beta = np.array(beta0, dtype=np.float64, copy=True)
    converged = np.zeros(r_total, dtype=bool)
    iterations = np.zeros(r_total, dtype=np.int64)
    rows = np.arange(r_total)
    offsets = n * np.arange(r_total)[:, None]
    for _ in range(max_iter):
        if rows.size == 0:
            break
        k = rows.size
        b, pr = beta[rows], prior[rows]
        free = pr == 0.0
        shift = np.where(free, b.max(axis=1), 0.0)[:, None]
        gamma = np.exp(b - shift)
        # sum_{k in R_t} gamma_k per stage; each of its runs gets w_t / that sum.
        total = np.add.reduceat(gamma[:, stages.members], stages.starts, axis=1)
        share = (weight[rows] / total)[:, owner]
        denom = np.bincount((stages.members[None, :] + offsets[:k]).ravel(),
                            weights=share.ravel(), minlength=k * n).reshape(k, n)
        denom += pr[:, None] / (gamma + 1.0)
        with np.errstate(divide="ignore"):
            new = np.log(wins[rows]) - np.log(denom) + shift
        new[free] -= new[free].mean(axis=1, keepdims=True)
        step = np.abs(new - b).max(axis=1)
        beta[rows] = new
        iterations[rows] += 1
        done = step < tol
        converged[rows[done]] = True
        rows = rows[~done]
    return beta, converged, iterations


@dataclass(frozen=True)
class PLResult:
    """Plackett-Luce fit.

    Attributes
    ----------
    ratings : ndarray of float64, shape (n,)
        Elo points, mean 1000.
    beta : ndarray of float64, shape (n,)
        Log-strengths in nats, mean zero.
    converged : bool
    iterations : int
        MM iterations.
    prior : float
        Pseudo-count used (0 = plain maximum likelihood).
    mle_exists : bool
        Hunter's Assumption 1 holds (the plain MLE is finite).
    warnings : list of str
    """

    ratings: npt.NDArray[np.float64]
    beta: npt.NDArray[np.float64]
    converged: bool
    iterations: int
    prior: float
    mle_exists: bool
    warnings: list[str] = field(default_factory=list)


def fit_plackett_luce(rankings: Rankings, *, prior: float = 0.0,
                      fallback_prior: float = DEFAULT_FALLBACK_PRIOR, tol: float = 1e-10,
                      max_iter: int = 100_000, init: npt.ArrayLike | None = None) -> PLResult:
    """Maximum-likelihood Plackett-Luce ratings by Hunter's MM algorithm (module docstring).

    Parameters
    ----------
    rankings : Rankings
        K-wise and pairwise votes (see :func:`rankings_from_pairs`, :func:`expand_ties`).
    prior : float
        Pseudo-count :math:`\\lambda` (virtual games per run, half won, against a reference of
        strength 1); 0 = plain MLE.
    fallback_prior : float
        Used instead of 0 when the MLE does not exist; reported in ``warnings``.
    tol : float
        Stop when no log-strength moves by more than ``tol`` nats in one MM step.
    max_iter : int
    init : array_like, shape (n,), optional
        Warm start, log-strengths in nats.

    Returns
    -------
    PLResult
    """
    if prior < 0 or fallback_prior <= 0:
        raise ValueError("prior must be >= 0 and fallback_prior > 0")
    n = rankings.n
    stages = _Stages.of(rankings)
    warnings: list[str] = []
    strong = stages.strongly_connected(stages.weight)
    used = prior
    if not strong and prior == 0.0:
        used = fallback_prior
        warnings.append(
            f"maximum-likelihood estimate does not exist (some runs never won or never lost, or "
            f"groups were never compared); added a pseudo-count prior of {used:g} virtual tied "
            "game(s) per run against a virtual reference run")
    beta0 = np.zeros((1, n)) if init is None else np.asarray(init, dtype=np.float64)[None]
    beta, conv, iters = _mm(stages, stages.weight[None], np.array([used]), beta0, tol,
                            max_iter)
    b = beta[0] - beta[0].mean()
    if not conv[0]:
        warnings.append(f"MM did not converge in {max_iter} iterations")
    return PLResult(anchor_ratings(b), b, bool(conv[0]), int(iters[0]), float(used), strong,
                    warnings)


def fit_plackett_luce_batch(rankings: Rankings, weights: npt.ArrayLike, *, prior: float = 0.0,
                            fallback_prior: float = DEFAULT_FALLBACK_PRIOR, tol: float = 1e-8,
                            max_iter: int = 20_000, init: npt.ArrayLike | None = None
                            ) -> npt.NDArray[np.float64]:
    """Fit many weightings of one list of rankings at once (one batched MM).

    Row ``r`` is the fit of ``rankings`` with entry weights ``weights[r]`` (e.g. vote counts of
    ``R`` simulated campaigns over every possible (set, pick), or bootstrap resamples), with
    the fallback pseudo-count where that weighting has no finite MLE, as
    :func:`fit_plackett_luce` does.

    Returns
    -------
    ndarray of float64, shape (R, n)
        Log-strengths in nats, each row mean zero.
    """
    stages = _Stages.of(rankings)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != len(rankings):
        raise ValueError("weights must have shape (R, number of rankings)")
    stage_w = w[:, stages.vote] * stages.weight[None, :]
    pr = np.full(w.shape[0], prior)
    if prior == 0.0:
        for r in range(w.shape[0]):
            if not stages.strongly_connected(stage_w[r]):
                pr[r] = fallback_prior
    n = rankings.n
    beta0 = (np.zeros((w.shape[0], n)) if init is None
             else np.array(np.broadcast_to(init, (w.shape[0], n)), dtype=np.float64))
    beta, _, _ = _mm(stages, stage_w, pr, beta0, tol, max_iter)
    return beta - beta.mean(axis=1, keepdims=True)


@dataclass(frozen=True)
class PLBootstrap:
    """Percentile bootstrap of Plackett-Luce ratings (votes resampled with replacement).

    Attributes
    ----------
    point : PLResult
    lower, upper, std : ndarray of float64, shape (n,)
        Percentile bounds and bootstrap standard error, Elo points.
    samples : ndarray of float64, shape (R, n)
        Ratings of every round (mean 1000).
    fallback_rounds : int
        Rounds whose resample had no finite MLE and used the fallback pseudo-count.
    """

    point: PLResult
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]
    samples: npt.NDArray[np.float64] = field(repr=False)
    fallback_rounds: int = 0


def bootstrap_plackett_luce(rankings: Rankings, *, rounds: int = 1000,
                            percentiles: tuple[float, float] = (2.5, 97.5),
                            seed: int | None = None, prior: float = 0.0,
                            fallback_prior: float = DEFAULT_FALLBACK_PRIOR, tol: float = 1e-7,
                            max_iter: int = 20_000) -> PLBootstrap:
    """Percentile bootstrap: resample the votes with replacement and refit, ``rounds`` times.

    A vote is the unit (the orders of a tied vote travel together, see ``Rankings.votes``):
    round ``b`` gives vote ``k`` the weight :math:`w_k c^{(b)}_k` with
    :math:`c^{(b)} \\sim \\mathrm{Multinomial}(m, (1/m, \\dots, 1/m))` over the ``m`` votes.
    Every round is warm-started from the point fit and all rounds run as one batched MM.

    Returns
    -------
    PLBootstrap
    """
    point = fit_plackett_luce(rankings, prior=prior, fallback_prior=fallback_prior)
    stages = _Stages.of(rankings)
    _, unit = np.unique(np.asarray(rankings.votes), return_inverse=True)
    m = int(unit.max()) + 1 if unit.size else 0
    n = rankings.n
    if m == 0 or rounds <= 0:
        samples = np.tile(point.ratings, (max(rounds, 0), 1))
        return PLBootstrap(point, point.ratings.copy(), point.ratings.copy(), np.zeros(n),
                           samples, 0)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(m, np.full(m, 1.0 / m), size=rounds).astype(np.float64)
    stage_unit = unit[stages.vote]
    weight = stages.weight[None, :] * draws[:, stage_unit]
    pr = np.full(rounds, prior)
    if prior == 0.0:
        for r in range(rounds):
            if not stages.strongly_connected(weight[r]):
                pr[r] = fallback_prior
    beta, _, _ = _mm(stages, weight, pr, np.broadcast_to(point.beta, (rounds, n)).copy(), tol,
                     max_iter)
    samples = anchor_ratings(beta - beta.mean(axis=1, keepdims=True))
    lower, upper = np.percentile(samples, percentiles, axis=0)
    return PLBootstrap(point, lower, upper, samples.std(axis=0, ddof=1), samples,
                       int((pr != prior).sum()))
