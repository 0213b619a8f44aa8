"""Pair policies: which pairs of runs to serve next, as pure functions of the votes so far.

A campaign serves comparison *tasks*; every task belongs to one run pair ``(i, j)``, ``i < j``.
A policy looks at the votes so far (:class:`PairVotes`) and returns a priority per run pair
(:class:`PairPriorities`); the campaign stores it on every task of the pair
(``ComparisonTask.priority``) and the serving query hands out tasks in the order

    highest priority first, then fewest judgments on the task, then a random key

(``evalhub/campaigns/serving/leasing.py``; :func:`serve_pairs` is that order written for a
simulation, and ``tests/campaigns/test_active_policy.py`` checks the two agree).  Priorities are
refreshed at most every 20 s, so between refreshes every vote goes to the *top tier* (the pairs
sharing the highest priority): a policy that gives one pair the highest priority sends a whole
refresh window of votes to that pair.

Policies
--------
``balanced``
    Every pair priority 0: the serving order alone spreads votes, fewest judgments per task
    first.  With ``T`` tasks per pair (prompts x seeds) this is sampling run pairs from an urn
    holding ``T`` tasks of every pair, refilled once every task has one more judgment: close to
    uniform random pairs until ``T x pairs`` votes, exactly round-robin when ``T = 1``.
``active``
    ``overlap_ij / (1 + n_ij)`` with bootstrap intervals (see :func:`active_priorities`): the
    policy EvalHub campaigns run with ``pair_policy="active"``.
``uncertainty`` (new)
    Information gain on the Bradley-Terry posterior, weighted by how undecided each pair's order
    is; a top tier of pairs shares the highest priority (:func:`uncertainty_priorities`).
``top`` (new)
    The same score, weighted by the posterior probability that either run is the best plus a
    uniform share (:func:`top_priorities`): spends votes on finding the winner first.
``infogain`` (new, the default recommendation)
    Greedy batch design on the Bradley-Terry posterior: the pairs whose votes most reduce the
    expected number of misordered pairs, with extra weight on the pairs that decide which run is
    best; the tier is chosen one pair at a time, each choice updating the posterior covariance
    as if its share of the refresh window's votes had arrived, so a window spreads over pairs
    that inform different runs (:func:`infogain_priorities`).
``thompson`` (new)
    Top-two Thompson sampling: duels between a run drawn as the best from the posterior and
    its strongest rival in a second draw (:func:`thompson_priorities`).  Finds the best run with
    the fewest votes and spends nothing on the rest of the order.
``uniform``
    Not a priority policy: every vote an independent uniformly random pair
    (:func:`uniform_pairs`), the baseline the efficiency bench compares against.

Units: log-strengths :math:`\\beta` in nats, Elo points = ``400 / ln 10`` nats (see
:mod:`ratings.bradley_terry`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import expit, log_ndtr

from .bradley_terry import (
    DEFAULT_FALLBACK_PRIOR,
    ELO_PER_NAT,
    fit_bradley_terry_batch,
    strongly_connected_batch,
)
from .counts import PairCells

__all__ = [
    "POLICIES",
    "PairPriorities",
    "PairVotes",
    "Posterior",
    "PriorityPolicy",
    "active_priorities",
    "balanced_priorities",
    "bootstrap_intervals",
    "bt_posterior",
    "default_tier",
    "infogain_priorities",
    "interval_overlap",
    "order_gain",
    "overlap_matrix",
    "policy_priorities",
    "serve_pairs",
    "thompson_priorities",
    "tiered_priorities",
    "top_priorities",
    "uncertainty_priorities",
    "uniform_pairs",
]

#: Bootstrap rounds behind the active policy's intervals (as campaigns have always used).
ACTIVE_BOOTSTRAP_ROUNDS = 200
#: Pseudo-count of the posterior used by the new policies: virtual tied games per run against
#: a reference of strength 0 (the fallback prior of :func:`ratings.fit_bradley_terry`).
POSTERIOR_PRIOR = 1.0


@dataclass(frozen=True)
class PairVotes:
    """Votes so far between ``n`` runs, per ordered pair.

    A stack of campaigns (leading dimensions, e.g. the repetitions of a simulation) is accepted
    by every policy of :data:`POLICIES` and by :func:`serve_pairs`, which then answer per
    campaign; :meth:`to_cells` takes one campaign.

    Attributes
    ----------
    wins : ndarray of float64, shape (..., n, n)
        ``wins[i, j]``: decisive votes where run ``i`` beat run ``j`` (units: votes).
    ties : ndarray of float64, shape (..., n, n)
        Symmetric; ties (``both_bad`` included) between ``i`` and ``j``.
    """

    wins: npt.NDArray[np.float64]
    ties: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        w, t = np.asarray(self.wins), np.asarray(self.ties)
        if w.ndim < 2 or w.shape[-1] != w.shape[-2] or t.shape != w.shape:
            raise ValueError("wins and ties must be square matrices of one shape")
        if (w < 0).any() or (t < 0).any():
            raise ValueError("vote counts must be non-negative")
        if not np.allclose(t, np.swapaxes(t, -1, -2)):
            raise ValueError("ties must be symmetric")

    @classmethod
    def empty(cls, n: int) -> PairVotes:
        """No votes between ``n`` runs."""
        return cls(np.zeros((n, n)), np.zeros((n, n)))

    @classmethod
    def from_cells(cls, cells: PairCells) -> PairVotes:
        """From :func:`ratings.aggregate_cells` (columns: ``i`` won, ``j`` won, tie)."""
        wins, ties = np.zeros((cells.n, cells.n)), np.zeros((cells.n, cells.n))
        wins[cells.i, cells.j] = cells.counts[:, 0]
        wins[cells.j, cells.i] = cells.counts[:, 1]
        ties[cells.i, cells.j] = ties[cells.j, cells.i] = cells.counts[:, 2]
        return cls(wins, ties)

    @property
    def n(self) -> int:
        """Number of runs."""
        return int(self.wins.shape[-1])

    @property
    def games(self) -> npt.NDArray[np.float64]:
        """Votes per pair, ``N_ij = wins_ij + wins_ji + ties_ij`` (symmetric, shape (..., n, n))."""
        return self.wins + np.swapaxes(self.wins, -1, -2) + self.ties

    def to_cells(self) -> PairCells:
        """The multinomial cells :func:`ratings.bootstrap_ratings` resamples (one campaign)."""
        if self.wins.ndim != 2:
            raise ValueError("to_cells takes the votes of one campaign")
        i, j = np.triu_indices(self.n, k=1)
        counts = np.stack([self.wins[i, j], self.wins[j, i], self.ties[i, j]], axis=1)
        voted = counts.sum(axis=1) > 0
        return PairCells(n=self.n, i=i[voted].astype(np.int64), j=j[voted].astype(np.int64),
                         counts=counts[voted].astype(np.float64))

    def bt_wins(self) -> npt.NDArray[np.float64]:
        """Win matrix of :mod:`ratings.counts`: a tie is half a win each way."""
        return self.wins + 0.5 * self.ties


@dataclass(frozen=True)
class PairPriorities:
    """A priority per run pair; higher is served first, equal priorities share a tier.

    Attributes
    ----------
    i, j : ndarray of int64, shape (P,)
        Every run pair, ``i < j``, in ``numpy.triu_indices`` order.
    priority : ndarray of float64, shape (..., P)
        One row per campaign when the votes were a stack.
    """

    i: npt.NDArray[np.int64]
    j: npt.NDArray[np.int64]
    priority: npt.NDArray[np.float64]

    @classmethod
    def from_matrix(cls, matrix: npt.ArrayLike) -> PairPriorities:
        """From symmetric (..., n, n) matrices: the upper triangle."""
        m = np.asarray(matrix, dtype=np.float64)
        i, j = np.triu_indices(m.shape[-1], k=1)
        return cls(i.astype(np.int64), j.astype(np.int64), m[..., i, j].copy())

    def matrix(self, n: int) -> npt.NDArray[np.float64]:
        """Symmetric (..., n, n) matrices (zero diagonal)."""
        m = np.zeros((*self.priority.shape[:-1], n, n))
        m[..., self.i, self.j] = m[..., self.j, self.i] = self.priority
        return m

    def by_ids(self, ids: list[int]) -> dict[tuple[int, int], float]:
        """``{(ids[i], ids[j]): priority}``: the keys campaigns store (``ids`` sorted)."""
        return {(ids[a], ids[b]): float(p)
                for a, b, p in zip(self.i.tolist(), self.j.tolist(), self.priority, strict=True)}

    @property
    def top_tier(self) -> npt.NDArray[np.int64]:
        """Indices (into ``i``/``j``) of the pairs sharing the highest priority (one campaign)."""
        return np.flatnonzero(self.priority == self.priority.max())


@dataclass(frozen=True)
class Posterior:
    """Laplace approximation of the Bradley-Terry posterior.

    With the pseudo-count prior of :func:`ratings.fit_bradley_terry` (``prior`` virtual tied
    games per run against a reference of strength 0) the MAP :math:`\\hat\\beta` exists for any
    votes, and :math:`\\beta \\approx \\mathcal N(\\hat\\beta, H^{-1})` with

    .. math::

        H_{ii} = \\sum_j N_{ij} p_{ij}(1-p_{ij}) + \\lambda q_i(1-q_i),\\quad
        H_{ij} = -N_{ij} p_{ij}(1-p_{ij}),\\quad
        p_{ij} = \\sigma(\\hat\\beta_i - \\hat\\beta_j),\\ q_i = \\sigma(\\hat\\beta_i).

    Attributes
    ----------
    beta : ndarray, shape (..., n)
        MAP log-strengths, nats, mean zero.
    cov : ndarray, shape (..., n, n)
        :math:`H^{-1}`, nats squared.
    """

    beta: npt.NDArray[np.float64]
    cov: npt.NDArray[np.float64]

    def diff_var(self) -> npt.NDArray[np.float64]:
        """``Var(beta_i - beta_j) = C_ii + C_jj - 2 C_ij``, shape (..., n, n)."""
        d = np.diagonal(self.cov, axis1=-2, axis2=-1)
        return d[..., :, None] + d[..., None, :] - 2.0 * self.cov

    def win_prob(self) -> npt.NDArray[np.float64]:
        """``p_ij = sigma(beta_i - beta_j)`` at the MAP, shape (..., n, n)."""
        return expit(self.beta[..., :, None] - self.beta[..., None, :])

    def best_probability(self, draws: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
        """Share of ``draws`` posterior samples in which each run is the strongest, (..., n)."""
        n = self.beta.shape[-1]
        batch = self.beta.shape[:-1]
        chol = np.linalg.cholesky(self.cov).reshape(-1, n, n)
        beta = self.beta.reshape(-1, n)
        share = np.empty((beta.shape[0], n))
        # One BLAS product per campaign: numpy's stacked matmul of small matrices is ~20x slower.
        for r in range(beta.shape[0]):
            samples = beta[r] + rng.standard_normal((draws, n)) @ chol[r].T
            share[r] = np.bincount(samples.argmax(axis=1), minlength=n) / draws
        return share.reshape(*batch, n)


def bt_posterior(votes: PairVotes, *, prior: float = POSTERIOR_PRIOR,
                 init: npt.ArrayLike | None = None) -> Posterior:
    """MAP fit with ``prior`` virtual tied games per run and its Laplace covariance.

    The MAP is :func:`ratings.fit_bradley_terry` with ``prior`` (it always exists, so no
    fallback is ever needed), fitted for a whole stack at once; ``init`` warm-starts it (nats).
    """
    n = votes.n
    batch = votes.wins.shape[:-2]
    wins = votes.bt_wins().reshape(-1, n, n)
    start = None if init is None else np.asarray(init, dtype=np.float64).reshape(-1, n)
    fit = fit_bradley_terry_batch(wins, prior=prior, init=start)
    beta = fit.beta - fit.beta.mean(axis=1, keepdims=True)
    p = expit(beta[:, :, None] - beta[:, None, :])
    weight = votes.games.reshape(-1, n, n) * p * (1.0 - p)
    hess = -weight
    q = expit(beta)
    diag = np.arange(n)
    hess[:, diag, diag] = weight.sum(axis=2) + prior * q * (1.0 - q)
    cov = np.linalg.inv(hess)
    return Posterior(beta=beta.reshape(*batch, n), cov=cov.reshape(*batch, n, n))


def interval_overlap(lower: npt.ArrayLike, upper: npt.ArrayLike, i: int, j: int) -> float:
    """|[l_i,u_i] ∩ [l_j,u_j]| / min(u_i - l_i, u_j - l_j), in [0, 1].

    1 when one interval contains the other, 0 when they are disjoint; two points (zero-width
    intervals) overlap fully when they coincide.
    """
    lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    shared = min(hi[i], hi[j]) - max(lo[i], lo[j])
    shortest = min(hi[i] - lo[i], hi[j] - lo[j])
    if shortest <= 0:
        return 1.0 if shared >= 0 else 0.0
    return float(np.clip(shared / shortest, 0.0, 1.0))


def balanced_priorities(votes: PairVotes, *, seed: int | None = None) -> PairPriorities:
    """Every pair priority 0: the serving order (fewest judgments first) does the balancing."""
    return PairPriorities.from_matrix(np.zeros(votes.wins.shape))


def bootstrap_intervals(votes: PairVotes, *, rounds: int = ACTIVE_BOOTSTRAP_ROUNDS,
                        seed: int | None = None, percentiles: tuple[float, float] = (2.5, 97.5)
                        ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Percentile-bootstrap intervals of the Bradley-Terry ratings, Elo (mean-anchored), for one
    campaign (shape (n,)) or a stack (R, n), all fitted in one batch.

    The bootstrap of :func:`ratings.bootstrap_ratings`: each round draws the multinomial cells
    ``(pair, outcome)`` with the observed shares and the observed number of votes, fits
    Bradley-Terry (ties half a win each way; the fallback pseudo-count where a resample has no
    finite MLE) and centres the ratings on their mean; the bounds are the ``percentiles`` of the
    rounds.  A campaign without votes gets infinite intervals.  Rounds of every campaign of a
    stack are fitted together (chunks of about 16 MB of win matrices).
    """
    wins = np.asarray(votes.wins, dtype=np.float64)
    ties = np.asarray(votes.ties, dtype=np.float64)
    single = wins.ndim == 2
    n = votes.n
    wins, ties = wins.reshape(-1, n, n), ties.reshape(-1, n, n)
    reps = wins.shape[0]
    i, j = np.triu_indices(n, k=1)
    cells = np.concatenate([wins[:, i, j], wins[:, j, i], ties[:, i, j]], axis=1)  # (R, 3P)
    total = cells.sum(axis=1)
    rng = np.random.default_rng(seed)
    lower = np.full((reps, n), -np.inf)
    upper = np.full((reps, n), np.inf)
    voted = np.flatnonzero(total > 0)
    chunk = max(1, int(16e6 // (rounds * n * n * 8)))
    p_count = i.size
    # The point estimates warm-start the rounds (a resample moves ratings by about one
    # standard error: two or three Newton steps).
    observed = wins + 0.5 * ties
    point = fit_bradley_terry_batch(
        observed, prior=np.where(strongly_connected_batch(observed), 0.0, DEFAULT_FALLBACK_PRIOR),
        tol=1e-4).beta
    for start in range(0, voted.size, chunk):
        rows = voted[start:start + chunk]
        shares = cells[rows] / total[rows, None]
        draws = rng.multinomial(np.rint(total[rows]).astype(np.int64), shares,
                                size=(rounds, rows.size)).astype(np.float64)
        draws = draws.reshape(-1, 3 * p_count)
        w = np.zeros((draws.shape[0], n, n))
        half = 0.5 * draws[:, 2 * p_count:]
        w[:, i, j] = draws[:, :p_count] + half
        w[:, j, i] = draws[:, p_count:2 * p_count] + half
        prior = np.where(strongly_connected_batch(w), 0.0, DEFAULT_FALLBACK_PRIOR)
        # 1e-4 nats is 0.02 Elo: far below the bootstrap's own noise.
        beta = fit_bradley_terry_batch(w, prior=prior, tol=1e-4,
                                       init=np.repeat(point[None, rows], rounds, axis=0)
                                       .reshape(-1, n)).beta
        elo = ELO_PER_NAT * (beta - beta.mean(axis=1, keepdims=True))
        elo = elo.reshape(rounds, rows.size, n)
        lower[rows] = np.percentile(elo, percentiles[0], axis=0)
        upper[rows] = np.percentile(elo, percentiles[1], axis=0)
    if single:
        return lower[0], upper[0]
    return lower.reshape(*votes.wins.shape[:-2], n), upper.reshape(*votes.wins.shape[:-2], n)


def overlap_matrix(lower: npt.ArrayLike, upper: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """:func:`interval_overlap` of every pair of runs, shape (..., n, n) (diagonal 1)."""
    lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    shared = (np.minimum(hi[..., :, None], hi[..., None, :])
              - np.maximum(lo[..., :, None], lo[..., None, :]))
    width = hi - lo
    shortest = np.minimum(width[..., :, None], width[..., None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.clip(shared / shortest, 0.0, 1.0)
    points = np.where(shared >= 0, 1.0, 0.0)
    # Infinite intervals (no votes) overlap fully.
    ratio = np.where(np.isfinite(shortest), ratio, 1.0)
    return np.where(shortest > 0, np.nan_to_num(ratio, nan=1.0), points)


def active_priorities(votes: PairVotes, *, seed: int | None = None,
                      rounds: int = ACTIVE_BOOTSTRAP_ROUNDS) -> PairPriorities:
    """The active policy: serve the pairs whose order is least certain.

    .. math:: \\mathrm{priority}_{ij} = \\frac{\\mathrm{overlap}_{ij}}{1 + n_{ij}}

    ``overlap_ij`` is :func:`interval_overlap` of the two runs' 95 % percentile-bootstrap
    intervals (``rounds`` rounds of :func:`bootstrap_intervals`, seeded with ``seed``:
    campaigns pass their id) and ``n_ij`` the votes the pair already has.  Before any vote
    every pair gets 1, so the campaign first connects the comparison graph, then spends votes
    where intervals still overlap.  Every pair's priority differs, so between refreshes the one
    top pair receives every vote.  One campaign or a stack (all bootstraps in one batch).
    """
    lower, upper = bootstrap_intervals(votes, rounds=rounds, seed=seed)
    overlap = overlap_matrix(lower, upper)
    return PairPriorities.from_matrix(overlap / (1.0 + votes.games))


def tiered_priorities(score: npt.ArrayLike, tier: int) -> PairPriorities:
    """Priorities from a pair score: the ``tier`` best pairs share the top priority.

    The ``tier`` pairs of highest score :math:`s_{ij}` get priority 1, every other pair
    :math:`0.999\\, s_{ij} / \\max s` (below the tier; 0 when no score is positive).

    ``score`` is a symmetric (..., n, n) matrix (one campaign or a stack; only the upper
    triangle is read).  Equal scores are ranked in ``numpy.triu_indices`` order.  The serving
    order hands every vote to the top tier until the next refresh (the rest are served only once
    the tier's tasks run out), so a tier of several pairs spreads a refresh window's votes over
    them instead of sending all to one pair.  The building block of :func:`uncertainty_priorities`
    and :func:`top_priorities`, public so that candidate policies (``bench/policy_experiments.py``)
    tier their own scores the same way.
    """
    pri = PairPriorities.from_matrix(score)
    s = pri.priority
    top = np.argsort(-s, axis=-1, kind="stable")[..., :max(1, tier)]
    peak = s.max(axis=-1, keepdims=True)
    rest = np.where(peak > 0, 0.999 * s / np.where(peak > 0, peak, 1.0), 0.0)
    np.put_along_axis(rest, top, 1.0, axis=-1)
    return PairPriorities(pri.i, pri.j, rest)


def order_gain(post: Posterior) -> npt.NDArray[np.float64]:
    """Information one more vote on (i, j) gives about their order, shape (..., n, n).

    .. math::

        g_{ij} = p_{ij}(1-p_{ij})\\, v_{ij}\\, \\exp\\left(-\\tfrac{d_{ij}^2}{2 v_{ij}}\\right)

    :math:`p(1-p)\\,v` is the Fisher information of one vote times the posterior variance of
    :math:`d = \\beta_i - \\beta_j` (the first-order information gain
    :math:`\\tfrac12\\log(1 + p(1-p)v)`); the Gaussian factor is 1 while the order is a coin flip
    and vanishes once :math:`|d|` is many standard deviations.
    """
    p = post.win_prob()
    v = np.maximum(post.diff_var(), 1e-12)
    d = post.beta[..., :, None] - post.beta[..., None, :]
    gain = p * (1.0 - p) * v * np.exp(-0.5 * d * d / v)
    diag = np.arange(post.beta.shape[-1])
    gain[..., diag, diag] = 0.0
    return gain


def default_tier(n: int) -> int:
    """Pairs sharing the top priority: ``max(2, n // 2)``, about one pair per two runs."""
    return max(2, n // 2)


def uncertainty_priorities(votes: PairVotes, *, seed: int | None = None,
                           tier: int | None = None,
                           init: npt.ArrayLike | None = None) -> PairPriorities:
    """New policy: the pairs whose order one vote informs most (:func:`order_gain`).

    The ``tier`` (default :func:`default_tier`) highest-scoring pairs share the top priority,
    so between refreshes the serving order spreads votes over them instead of sending all to
    one pair.
    """
    gain = order_gain(bt_posterior(votes, init=init))
    return tiered_priorities(gain, default_tier(votes.n) if tier is None else tier)


def top_priorities(votes: PairVotes, *, seed: int | None = None, tier: int | None = None,
                   draws: int = 1000, init: npt.ArrayLike | None = None) -> PairPriorities:
    """New policy: find the best run without abandoning the rest of the order.

    .. math:: s_{ij} = g_{ij}\\,\\left(\\pi_i + \\pi_j + \\frac{2}{n}\\right)

    with :math:`g` the order gain of :func:`order_gain` and :math:`\\pi_i` the posterior
    probability that run ``i`` is the strongest (``draws`` samples of the Laplace posterior,
    seeded with ``seed``).  :math:`2/n` is what :math:`\\pi_i + \\pi_j` would be if every run
    were equally likely to be best: pairs of two hopeless runs keep that share of the order
    gain (without it, ``bench/efficiency.py`` finds the best run about 1.4x sooner but needs
    about 3x the votes for the whole order).  The ``tier`` best pairs share the top priority.
    """
    post = bt_posterior(votes, init=init)
    best = post.best_probability(draws, np.random.default_rng(seed))
    n = votes.n
    score = order_gain(post) * (best[..., :, None] + best[..., None, :] + 2.0 / n)
    return tiered_priorities(score, default_tier(votes.n) if tier is None else tier)


#: Votes the infogain policy expects between two refreshes of the priorities (production
#: refreshes every 20 s: 50 votes is 2.5 votes/s), shared out over its tier.
INFOGAIN_BATCH = 50
#: Extra weight of the pairs that decide the best run (``w`` in :func:`infogain_priorities`).
INFOGAIN_TOP_WEIGHT = 1.0


def _phi(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def best_probability_approx(post: Posterior) -> npt.NDArray[np.float64]:
    """P(run ``a`` is the strongest), pairwise-independence approximation, shape (..., n).

    .. math:: \\pi_a \\propto \\prod_{b \\ne a} \\Phi\\left(\\frac{d_{ab}}{s_{ab}}\\right)

    with :math:`d_{ab} = \\hat\\beta_a - \\hat\\beta_b` and :math:`s_{ab}^2` its posterior
    variance; normalised to sum to 1.  No sampling: deterministic and cheap for a stack.
    """
    d = post.beta[..., :, None] - post.beta[..., None, :]
    s = np.sqrt(np.maximum(post.diff_var(), 1e-12))
    logp = log_ndtr(d / s)
    n = post.beta.shape[-1]
    diag = np.arange(n)
    logp[..., diag, diag] = 0.0
    total = logp.sum(axis=-1)
    total -= total.max(axis=-1, keepdims=True)
    pi = np.exp(total)
    return pi / pi.sum(axis=-1, keepdims=True)


def infogain_priorities(votes: PairVotes, *, seed: int | None = None, tier: int | None = None,
                        batch: int = INFOGAIN_BATCH, top_weight: float = INFOGAIN_TOP_WEIGHT,
                        init: npt.ArrayLike | None = None) -> PairPriorities:
    """New policy: a tier of pairs chosen greedily to cut the expected misordered pairs.

    Posterior: the Laplace approximation :math:`\\beta \\sim \\mathcal N(\\hat\\beta, \\Sigma)`
    of :func:`bt_posterior`.  For a pair ``(a, b)`` with :math:`d = \\hat\\beta_a -
    \\hat\\beta_b` and posterior sd :math:`s`, the chance that the final leaderboard orders the
    two wrongly, once its own sd has shrunk to :math:`s' \\ll s`, is about
    :math:`0.8\\,\\varphi(d/s)\\,s'/s`; its derivative in :math:`s'^2` (taken at
    :math:`s' = s`) gives the loss weight of the pair

    .. math::

        g_{ab} = \\frac{\\varphi(d_{ab}/s_{ab})}{s_{ab}^2}
                 \\left(1 + w\\,\\frac{n}{2}(\\pi_a + \\pi_b)\\right)

    (:math:`\\pi` from :func:`best_probability_approx`; :math:`\\frac n2(\\pi_a+\\pi_b)` averages 1
    over pairs, so ``w = top_weight`` doubles the weight of the pairs that decide the winner
    when ``w = 1``).  ``m`` votes on pair ``(i, j)``, :math:`x = e_i - e_j`, add Fisher
    information :math:`\\omega = m\\,p_{ij}(1-p_{ij})` along ``x``, which lowers
    :math:`\\sum_{a<b} g_{ab} s_{ab}^2` by (Sherman-Morrison)

    .. math::

        \\Delta_{ij} = \\frac{\\omega\\, x^\\top \\Sigma L \\Sigma x}
                           {1 + \\omega\\, x^\\top\\Sigma x},

    ``L`` the graph Laplacian of ``g``.  The ``tier`` pairs (default :func:`default_tier`) are
    picked one at a time by largest :math:`\\Delta`, each pick updating :math:`\\Sigma` (and
    :math:`\\Sigma L \\Sigma`, rank one) with ``m = batch / tier`` fantasised votes, so the
    next pick goes where those votes will not already have informed: the serving order then
    spreads the window's ``batch`` votes over the tier.  The tier shares priority 1; the
    other pairs get :math:`0.999\\,\\Delta / \\max\\Delta` of the first step.  Deterministic
    (``seed`` is accepted for a uniform signature and unused).  Units: nats.
    """
    post = bt_posterior(votes, init=init)
    n = votes.n
    batch_shape = post.beta.shape[:-1]
    beta = post.beta.reshape(-1, n)
    cov = post.cov.reshape(-1, n, n).copy()
    reps = beta.shape[0]
    flat = Posterior(beta=beta, cov=cov)
    d = beta[:, :, None] - beta[:, None, :]
    s2 = np.maximum(flat.diff_var(), 1e-12)
    pi = best_probability_approx(flat)
    top = 1.0 + top_weight * 0.5 * n * (pi[:, :, None] + pi[:, None, :])
    g = _phi(d / np.sqrt(s2)) / s2 * top
    diag = np.arange(n)
    g[:, diag, diag] = 0.0
    lap = -g
    lap[:, diag, diag] = g.sum(axis=2)
    m_mat = cov @ lap @ cov
    pi_, pj_ = np.triu_indices(n, k=1)
    p = expit(d[:, pi_, pj_])
    size = max(1, min(default_tier(n) if tier is None else tier, pi_.size))
    omega = (batch / size) * p * (1.0 - p)
    rows = np.arange(reps)
    chosen = np.zeros((reps, pi_.size), dtype=bool)
    first = None
    for _ in range(size):
        xmx = m_mat[:, pi_, pi_] + m_mat[:, pj_, pj_] - 2.0 * m_mat[:, pi_, pj_]
        xsx = cov[:, pi_, pi_] + cov[:, pj_, pj_] - 2.0 * cov[:, pi_, pj_]
        gain = omega * np.maximum(xmx, 0.0) / (1.0 + omega * xsx)
        if first is None:
            first = gain.copy()
        gain[chosen] = -np.inf
        k = gain.argmax(axis=1)
        chosen[rows, k] = True
        a, b = pi_[k], pj_[k]
        u = cov[rows, :, a] - cov[rows, :, b]  # Sigma x, (reps, n)
        c = omega[rows, k] / (1.0 + omega[rows, k] * xsx[rows, k])
        lu = np.einsum("rij,rj->ri", lap, u)
        slu = np.einsum("rij,rj->ri", cov, lu)  # Sigma L u (old Sigma)
        ulu = np.einsum("ri,ri->r", u, lu)
        cov -= c[:, None, None] * u[:, :, None] * u[:, None, :]
        m_mat -= c[:, None, None] * (u[:, :, None] * slu[:, None, :]
                                     + slu[:, :, None] * u[:, None, :])
        m_mat += (c * c * ulu)[:, None, None] * u[:, :, None] * u[:, None, :]
    peak = first.max(axis=1, keepdims=True)
    pri = np.where(peak > 0, 0.999 * first / np.where(peak > 0, peak, 1.0), 0.0)
    pri = np.where(chosen, 1.0, np.minimum(pri, 0.999))
    return PairPriorities(pi_.astype(np.int64), pj_.astype(np.int64),
                          pri.reshape(*batch_shape, pi_.size))


#: Thompson draws per refresh of the thompson policy: at most this many pairs share its tier.
THOMPSON_DRAWS = 10


def _pair_index(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], n: int
                ) -> npt.NDArray[np.int64]:
    """Index into ``numpy.triu_indices(n, 1)`` of the unordered pair ``{a, b}`` (``a != b``)."""
    i, j = np.minimum(a, b), np.maximum(a, b)
    return i * n - i * (i + 1) // 2 + (j - i - 1)


def thompson_priorities(votes: PairVotes, *, seed: int | None = None,
                        draws: int = THOMPSON_DRAWS) -> PairPriorities:
    """New policy: top-two Thompson sampling on the Bradley-Terry posterior (finds the best run).

    Each of ``draws`` duels samples the Laplace posterior :math:`\\mathcal N(\\hat\\beta,
    \\Sigma)` of :func:`bt_posterior` twice: the *leader* is the strongest run of the first
    sample, the *challenger* the strongest run other than the leader in the second.  The pairs
    (leader, challenger) form the tier (priority 1, every other pair 0), so between refreshes the
    serving order spreads the votes over at most ``draws`` duels.  A run is a leader about as
    often as it is probably the best, and a challenger as often as it could still be, so votes
    go where they decide the winner: early on, while every run may be best, the duels are
    random pairs; once one run leads clearly, most votes pit it against its closest rivals
    (Russo 2016, "Simple Bayesian algorithms for best arm identification").  Nothing is spent
    on the order below the top: the policy for campaigns that only need the winner.

    The draws are seeded with ``seed`` (campaigns pass their id) and the number of votes so
    far, so each refresh draws afresh and the same votes always give the same priorities.
    """
    n = votes.n
    if n < 2:  # no pair to serve
        return PairPriorities.from_matrix(np.zeros(votes.wins.shape))
    post = bt_posterior(votes)
    batch = post.beta.shape[:-1]
    beta = post.beta.reshape(-1, n)
    chol = np.linalg.cholesky(post.cov.reshape(-1, n, n))
    total = round(float(np.asarray(votes.games).sum()))
    rng = np.random.default_rng([0 if seed is None else abs(int(seed)), total])
    m = max(1, int(draws))
    z = rng.standard_normal((beta.shape[0], 2, m, n))
    samples = beta[:, None, None, :] + np.einsum("rkmj,rij->rkmi", z, chol)
    leader = samples[:, 0].argmax(axis=-1)  # (R, m)
    second = samples[:, 1].copy()
    np.put_along_axis(second, leader[..., None], -np.inf, axis=-1)
    challenger = second.argmax(axis=-1)
    pri = np.zeros((beta.shape[0], n * (n - 1) // 2))
    np.put_along_axis(pri, _pair_index(leader, challenger, n), 1.0, axis=-1)
    i, j = np.triu_indices(n, k=1)
    return PairPriorities(i.astype(np.int64), j.astype(np.int64),
                          pri.reshape(*batch, i.size))


PriorityPolicy = Callable[..., PairPriorities]
#: Priority policies by name: ``policy(votes, seed=...) -> PairPriorities``.  A campaign's
#: ``pair_policy`` is one of these names, and :func:`policy_priorities` is the one call both
#: the campaign services and ``bench/efficiency.py`` make.
POLICIES: dict[str, PriorityPolicy] = {
    "balanced": balanced_priorities,
    "active": active_priorities,
    "uncertainty": uncertainty_priorities,
    "top": top_priorities,
    "infogain": infogain_priorities,
    "thompson": thompson_priorities,
}


def policy_priorities(policy: str, votes: PairVotes, *, seed: int | None = None
                      ) -> PairPriorities:
    """The priorities of the policy named ``policy`` (a key of :data:`POLICIES`).

    Campaigns pass their id as ``seed``; unknown names raise ``ValueError``.
    """
    try:
        function = POLICIES[policy]
    except KeyError:
        raise ValueError(f"unknown pair policy {policy!r}; expected one of "
                         f"{sorted(POLICIES)}") from None
    return function(votes, seed=seed)


def serve_pairs(priorities: PairPriorities, served: npt.ArrayLike, k: int,
                rng: np.random.Generator, *, tasks_per_pair: int) -> npt.NDArray[np.int64]:
    """The next ``k`` pairs the serving order hands out, priorities fixed meanwhile.

    Each pair has ``tasks_per_pair`` tasks ``T`` and has been served ``c_p`` times (``served``,
    shape (P,), same order as ``priorities``).  Tasks are served fewest judgments first, so a
    pair's tasks hold :math:`\\lfloor c_p/T \\rfloor` or one more judgments and
    :math:`T - (c_p \\bmod T)` of them sit at the lower level.  Each vote goes to a uniformly
    random task among those of the top-priority pairs at the lowest level, i.e. to pair ``p``
    with probability proportional to :math:`T - (c_p \\bmod T)` among the pairs of top priority
    whose level :math:`\\lfloor c_p/T \\rfloor` is lowest.  Tasks never run out (a campaign's
    ``judgments_per_pair`` is assumed large enough) and the walk's random start is taken as a
    uniform pick.

    Parameters
    ----------
    priorities : PairPriorities
        Priorities of one campaign (P,) or of a stack (R, P).
    served : array_like of int, shape (P,) or (R, P)
        Votes each pair has had.
    k : int
        Votes to serve before the priorities are refreshed.
    rng : numpy.random.Generator
    tasks_per_pair : int
        ``T``.

    Returns
    -------
    ndarray of int64, shape (k,) or (R, k)
        Indices into ``priorities.i`` / ``priorities.j``.
    """
    single = priorities.priority.ndim == 1
    pri = np.atleast_2d(priorities.priority)
    counts = np.array(np.broadcast_to(served, pri.shape), dtype=np.int64)
    out = np.empty((pri.shape[0], k), dtype=np.int64)
    for r in range(pri.shape[0]):
        tier = np.flatnonzero(pri[r] == pri[r].max())
        c = counts[r, tier]
        picks, left = [], k
        while left:
            # The urn: tasks of the tier's pairs at the lowest judgment level.  Successive
            # uniform picks without replacement from it are a multivariate hypergeometric draw;
            # once it is empty those tasks sit one level up and the next urn is formed.
            level = c // tasks_per_pair
            pool = np.where(level == level.min(), tasks_per_pair - c % tasks_per_pair, 0)
            take = min(left, int(pool.sum()))
            drawn = rng.multivariate_hypergeometric(pool, take)
            c += drawn
            # Within one urn the order is uniformly random.
            picks.append(rng.permutation(np.repeat(tier, drawn)))
            left -= take
        out[r] = np.concatenate(picks)
    return out[0] if single else out


def uniform_pairs(n_pairs: int, k: int, rng: np.random.Generator,
                  campaigns: int | None = None) -> npt.NDArray[np.int64]:
    """``k`` independent uniformly random pair indices, shape (k,) or (campaigns, k): the
    baseline without any policy."""
    shape = (k,) if campaigns is None else (campaigns, k)
    return rng.integers(0, n_pairs, size=shape).astype(np.int64)
