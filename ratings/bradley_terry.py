"""Bradley-Terry maximum likelihood ratings on the Elo scale.

Model.  Run ``i`` has log-strength :math:`\\beta_i` (natural units, "nats") and

.. math::

    P(i \\text{ beats } j) = \\sigma(\\beta_i - \\beta_j) = \\frac{1}{1 + e^{\\beta_j - \\beta_i}}.

With aggregated counts :math:`W_{ij}` (ties = half a win each way, see :mod:`ratings.counts`)
and :math:`N_{ij} = W_{ij} + W_{ji}` the log-likelihood is

.. math:: \\ell(\\beta) = \\sum_{i \\ne j} W_{ij} \\log \\sigma(\\beta_i - \\beta_j).

Ratings are reported on the Elo scale

.. math:: r_i = \\frac{400}{\\ln 10} \\beta_i + c,

so that :math:`P(i \\text{ beats } j) = 1 / (1 + 10^{(r_j - r_i)/400})`, with the constant
``c`` chosen so that the mean rating is 1000 (default) or a named anchor run sits at 1000.

Existence.  The MLE is finite and unique (up to the shift ``c``) iff the directed graph with an
edge ``i -> j`` whenever ``W_ij > 0`` is strongly connected (Zermelo 1929; Ford 1957; Hunter
2004, Assumption 1).  Otherwise some :math:`\\beta` run off to :math:`\\pm\\infty` (a run that
never lost, a run that never won, two groups never compared, ...).  :func:`fit_bradley_terry`
detects this and, instead of diverging, adds a small documented pseudo-count prior (see
``prior``) and says so in :attr:`BTResult.warnings`.

Solver.  Newton's method on the concave log-likelihood (it is a logistic regression), batched
over any leading dimension so the bootstrap can fit a thousand resamples at once.  The negative
Hessian is the weighted graph Laplacian :math:`L_{ij} = -N_{ij} p_{ij}(1-p_{ij})`,
:math:`L_{ii} = \\sum_j N_{ij} p_{ij}(1 - p_{ij})`; its null vector (the constant shift) is
removed by solving :math:`(L + \\mathbf{1}\\mathbf{1}^T/n)\\,\\delta = \\nabla\\ell`, which gives
the minimum-norm Newton step because the gradient sums to zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.sparse.csgraph import connected_components

__all__ = [
    "ELO_PER_NAT",
    "BTBatchFit",
    "BTResult",
    "anchor_ratings",
    "comparison_components",
    "fit_bradley_terry",
    "fit_bradley_terry_batch",
]

#: Elo points per nat of log-strength: 400 / ln(10) ≈ 173.72.
ELO_PER_NAT: float = 400.0 / math.log(10.0)

#: Pseudo-count used automatically when the MLE does not exist (see ``fit_bradley_terry``).
DEFAULT_FALLBACK_PRIOR: float = 1.0


@dataclass(frozen=True)
class BTResult:
    """Bradley-Terry fit.

    Attributes
    ----------
    ratings : ndarray of float64, shape (n,)
        Elo-scale ratings (Elo points), anchored as requested.
    converged : bool
        Newton steps fell below ``tol`` before ``max_iter``.
    iterations : int
        Newton iterations performed.
    components : list of list of int
        Connected components of the (undirected) comparison graph, largest first.  Ratings are
        only comparable within one component.
    warnings : list of str
        Human-readable problems found in the data and how they were resolved.  Empty when the
        plain MLE exists.
    beta : ndarray of float64, shape (n,)
        Log-strengths in nats, centred to mean zero (useful as a warm start).
    prior : float
        Pseudo-count actually used (0.0 = plain maximum likelihood).
    mle_exists : bool
        Whether the win graph is strongly connected, i.e. the unregularised MLE is finite.
    games : ndarray of float64, shape (n,)
        Games played per run (ties count as one game).
    """

    ratings: npt.NDArray[np.float64]
    converged: bool
    iterations: int
    components: list[list[int]]
    warnings: list[str] = field(default_factory=list)
    beta: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    prior: float = 0.0
    mle_exists: bool = True
    games: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class BTBatchFit:
    """Result of :func:`fit_bradley_terry_batch`.

    Attributes
    ----------
    beta : ndarray of float64, shape (R, n)
        Log-strengths in nats (not centred; centre or anchor before comparing).
    converged : ndarray of bool, shape (R,)
    iterations : ndarray of int64, shape (R,)
    """

    beta: npt.NDArray[np.float64]
    converged: npt.NDArray[np.bool_]
    iterations: npt.NDArray[np.int64]


def comparison_components(wins: npt.ArrayLike) -> tuple[list[list[int]], bool]:
    """Connected components of the comparison graph and the MLE-existence condition.

    Parameters
    ----------
    wins : array_like, shape (n, n)
        Win matrix (see :func:`ratings.counts.aggregate_counts`).

    Returns
    -------
    components : list of list of int
        Components of the undirected graph with an edge where :math:`W_{ij} + W_{ji} > 0`,
        sorted largest first (ties broken by smallest member).
    strongly_connected : bool
        Whether the directed graph with an edge ``i -> j`` where :math:`W_{ij} > 0` is strongly
        connected, which is necessary and sufficient for a finite Bradley-Terry MLE.
    """
    w = np.asarray(wins, dtype=np.float64)
    n = w.shape[0]
    if n == 0:
        return [], True
    games = w + w.T
    _, labels = connected_components(games > 0, directed=False)
    groups: dict[int, list[int]] = {}
    for run, lab in enumerate(labels.tolist()):
        groups.setdefault(lab, []).append(run)
    components = sorted(groups.values(), key=lambda c: (-len(c), c[0]))
    n_strong, _ = connected_components(w > 0, directed=True, connection="strong")
    return components, bool(n_strong == 1)


def strongly_connected_batch(wins: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether each win graph (edge ``i -> j`` where :math:`W_{ij} > 0`) is strongly connected.

    Batched reachability: with :math:`M_0 = [W > 0] \\vee I`, the boolean square
    :math:`M_{k+1} = [M_k M_k > 0]` marks every pair joined by a path of at most :math:`2^{k+1}`
    edges, so after :math:`\\lceil \\log_2 n \\rceil` squarings the graph is strongly connected iff
    every entry is set.  Same answer as :func:`comparison_components`, for a stack of matrices
    at the cost of a few batched matrix products (the bootstrap checks hundreds per call).

    Parameters
    ----------
    wins : array_like, shape (R, n, n)

    Returns
    -------
    ndarray of bool, shape (R,)
    """
    w = np.asarray(wins, dtype=np.float64)
    n = w.shape[-1]
    reach = ((w > 0) | np.eye(n, dtype=bool)).astype(np.float64)
    for _ in range(max(1, math.ceil(math.log2(max(n, 2))))):
        reach = np.minimum(reach @ reach, 1.0)
    return (reach > 0).all(axis=(-2, -1))


class NewtonWorkspace:
    """Reusable scratch buffers for :func:`_newton` (one per thread).

    Allocating fresh (R, n, n) temporaries every iteration costs more than the arithmetic on
    them (page faults on large allocations), so the bootstrap keeps one workspace per worker.
    """

    def __init__(self, rounds: int, n: int) -> None:
        self.shape = (rounds, n)
        self.inv = np.empty((rounds, n, n))
        self.p = np.empty((rounds, n, n))
        self.v = np.empty((rounds, n, n))
        self.games = np.empty((rounds, n, n))

    def fits(self, rounds: int, n: int) -> bool:
        return rounds <= self.shape[0] and n == self.shape[1]


def _newton(
    wins: npt.NDArray[np.float64],
    prior: npt.NDArray[np.float64],
    beta0: npt.NDArray[np.float64],
    tol: float,
    max_iter: int,
    max_step: float,
    workspace: NewtonWorkspace | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Batched Newton iterations; shapes (R, n, n), (R,), (R, n)."""
    r_total, n, _ = wins.shape
    if workspace is None or not workspace.fits(r_total, n):
        workspace = NewtonWorkspace(r_total, n)
    beta = np.array(beta0, dtype=np.float64, copy=True)
    converged = np.zeros(r_total, dtype=bool)
    iterations = np.zeros(r_total, dtype=np.int64)
    games = np.add(wins, wins.transpose(0, 2, 1), out=workspace.games[:r_total])
    row_wins = wins.sum(axis=2)
    pr = prior
    diag = np.arange(n)
    # `rows` are the rounds still in the working set; converged rounds stay in it (extra Newton
    # steps at the optimum are harmless) until at least half are done, then it is compacted.
    rows = np.arange(r_total)
    b = beta.copy()
    for _ in range(max_iter):
        k = rows.size
        if k == 0:
            break
        inv, p, v = workspace.inv[:k], workspace.p[:k], workspace.v[:k]
        # Shift by the max so exp never overflows; P_ij = s_i / (s_i + s_j) is shift invariant.
        s = np.exp(b - b.max(axis=1, keepdims=True))
        np.add(s[:, :, None], s[:, None, :], out=inv)
        np.reciprocal(inv, out=inv)
        np.multiply(s[:, :, None], inv, out=p)  # P(i beats j)
        # Gradient of the log-likelihood: observed wins minus expected wins.
        grad = row_wins - np.einsum("rij,rij->ri", games, p)
        # Curvature weights N_ij p_ij (1 - p_ij), using 1 - p_ij = s_j / (s_i + s_j).
        np.multiply(games, p, out=v)
        v *= s[:, None, :]
        v *= inv
        curvature = v.sum(axis=2)  # N_ii = 0, so the diagonal of v is already zero
        hess = np.negative(v, out=v)
        hess[:, diag, diag] = curvature
        if pr.any():
            # Pseudo-count prior: `prior` virtual games, half won, against a reference at beta=0.
            q = 1.0 / (1.0 + np.exp(-b))
            grad += pr[:, None] * (0.5 - q)
            hess[:, diag, diag] += pr[:, None] * q * (1.0 - q)
        # Rounds without a prior have a singular Laplacian (shift invariance): add 11^T/n.
        hess += (pr == 0.0)[:, None, None] / n
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        size = np.abs(step).max(axis=1)
        # Cap the step (a crude trust region) so a bad start cannot overshoot wildly; near the
        # optimum steps are tiny and Newton's quadratic convergence is untouched.
        scale = np.minimum(1.0, max_step / np.maximum(size, 1e-300))
        b += step * scale[:, None]
        fresh = ~converged[rows]
        iterations[rows[fresh]] += 1
        converged[rows[fresh & (size < tol)]] = True
        still = ~converged[rows]
        if still.sum() * 2 <= k:
            beta[rows] = b
            rows, b = rows[still], b[still]
            games, row_wins, pr = games[still], row_wins[still], pr[still]
    beta[rows] = b
    return beta, converged, iterations


def fit_bradley_terry_batch(
    wins: npt.ArrayLike,
    *,
    prior: float | npt.ArrayLike = 0.0,
    init: npt.ArrayLike | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
    max_step: float = 2.0,
    workspace: NewtonWorkspace | None = None,
) -> BTBatchFit:
    """Fit Bradley-Terry to a batch of win matrices at once (no checks, no anchoring).

    This is the workhorse of the bootstrap: every Newton iteration processes all ``R`` matrices
    with array operations; rounds that have converged drop out of later iterations.

    Parameters
    ----------
    wins : array_like, shape (R, n, n)
        Win matrices.
    prior : float or array_like of shape (R,)
        Pseudo-count per matrix (see :func:`fit_bradley_terry`).  Rounds with ``prior == 0`` and
        no finite MLE will not converge (reported in ``converged``).
    init : array_like, shape (n,) or (R, n), optional
        Warm start in nats (e.g. the point estimate's ``beta``); zeros by default.
    tol : float
        Stop a round when the largest Newton step is below ``tol`` nats.
    max_iter : int
        Maximum Newton iterations.
    max_step : float
        Largest allowed change of any :math:`\\beta_i` per iteration, in nats.
    workspace : NewtonWorkspace, optional
        Scratch buffers to reuse across calls (one per thread).

    Returns
    -------
    BTBatchFit
    """
    w = np.asarray(wins, dtype=np.float64)
    if w.ndim != 3 or w.shape[1] != w.shape[2]:
        raise ValueError("wins must have shape (R, n, n)")
    r_total, n, _ = w.shape
    pr = np.broadcast_to(np.asarray(prior, dtype=np.float64), (r_total,)).copy()
    if init is None:
        beta0 = np.zeros((r_total, n))
    else:
        beta0 = np.broadcast_to(np.asarray(init, dtype=np.float64), (r_total, n))
    beta, conv, iters = _newton(w, pr, beta0, tol, max_iter, max_step, workspace)
    return BTBatchFit(beta=beta, converged=conv, iterations=iters)


def anchor_ratings(
    beta: npt.ArrayLike, *, anchor: int | None = None, anchor_rating: float = 1000.0
) -> npt.NDArray[np.float64]:
    """Convert log-strengths to anchored Elo-scale ratings.

    .. math:: r_i = \\frac{400}{\\ln 10}\\,\\beta_i + c

    Parameters
    ----------
    beta : array_like, shape (..., n)
        Log-strengths in nats.
    anchor : int, optional
        Run whose rating is pinned to ``anchor_rating``; by default the mean rating is.
    anchor_rating : float
        Elo points.

    Returns
    -------
    ndarray of float64, shape (..., n)
    """
    r = ELO_PER_NAT * np.asarray(beta, dtype=np.float64)
    ref = r.mean(axis=-1, keepdims=True) if anchor is None else r[..., anchor : anchor + 1]
    return r - ref + anchor_rating


def _diagnose(wins: npt.NDArray[np.float64], components: list[list[int]]) -> list[str]:
    n = wins.shape[0]
    games = (wins + wins.T).sum(axis=1)
    row = wins.sum(axis=1)
    col = wins.sum(axis=0)
    msgs = []
    no_games = np.flatnonzero(games == 0).tolist()
    no_wins = np.flatnonzero((games > 0) & (row == 0)).tolist()
    no_losses = np.flatnonzero((games > 0) & (col == 0)).tolist()
    if no_games:
        msgs.append(
            f"runs {no_games} have no games; their rating is the prior centre and meaningless"
        )
    if no_wins:
        msgs.append(f"runs {no_wins} never won (not even a tie); their MLE would be -infinity")
    if no_losses:
        msgs.append(f"runs {no_losses} never lost (not even a tie); their MLE would be +infinity")
    played = [c for c in components if games[c].sum() > 0]
    if len(played) > 1:
        msgs.append(
            f"comparison graph has {len(played)} disconnected groups {played}; ratings are not "
            "comparable across groups (each is only tied to the others through the prior)"
        )
    if not msgs and n > 1:
        msgs.append(
            "win graph is not strongly connected (a group of runs never lost to the rest); "
            "the MLE would diverge"
        )
    return msgs


def fit_bradley_terry(
    wins: npt.ArrayLike,
    *,
    prior: float = 0.0,
    fallback_prior: float = DEFAULT_FALLBACK_PRIOR,
    anchor: int | None = None,
    anchor_rating: float = 1000.0,
    init: npt.ArrayLike | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> BTResult:
    """Bradley-Terry maximum-likelihood ratings from a win matrix, on the Elo scale.

    Maximises

    .. math::

        \\ell(\\beta) = \\sum_{i \\ne j} W_{ij} \\log\\sigma(\\beta_i - \\beta_j)
        + \\lambda \\sum_i \\left[\\tfrac12 \\log\\sigma(\\beta_i)
        + \\tfrac12 \\log\\sigma(-\\beta_i)\\right]

    where the second term (``prior`` :math:`=\\lambda`) means "every run additionally played
    :math:`\\lambda` virtual games, half won and half lost, against a virtual reference run of
    strength 0".  It is a pseudo-count ridge: it shrinks ratings towards each other by about
    :math:`\\lambda` games' worth of evidence, which is negligible with thousands of votes but
    keeps everything finite when the data alone cannot.

    Parameters
    ----------
    wins : array_like, shape (n, n)
        Win matrix (votes; ties as 0.5 each way).
    prior : float
        Pseudo-count :math:`\\lambda` (virtual games per run).  0 = plain MLE.
    fallback_prior : float
        Pseudo-count used instead when ``prior == 0`` and the MLE does not exist (win graph not
        strongly connected).  This is always reported in ``warnings``.
    anchor : int, optional
        Index of a run pinned to ``anchor_rating``; default pins the mean of all runs.
    anchor_rating : float
        Elo points (default 1000).
    init : array_like, shape (n,), optional
        Warm start, log-strengths in nats (e.g. a previous ``BTResult.beta``).
    tol : float
        Convergence: largest Newton step below ``tol`` nats (1e-9 nats ≈ 2e-7 Elo).
    max_iter : int
        Maximum Newton iterations.

    Returns
    -------
    BTResult
        ``warnings`` lists runs without games, wins or losses, disconnected groups, and the
        pseudo-count that was applied because of them.
    """
    w = np.asarray(wins, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError("wins must be a square (n, n) matrix")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("wins must be finite and non-negative")
    if prior < 0 or fallback_prior <= 0:
        raise ValueError("prior must be >= 0 and fallback_prior > 0")
    n = w.shape[0]
    w = w.copy()
    np.fill_diagonal(w, 0.0)
    if anchor is not None and not 0 <= anchor < n:
        raise ValueError(f"anchor must be a run index in [0, {n})")
    games = (w + w.T).sum(axis=1)
    components, strong = comparison_components(w)
    warnings: list[str] = []
    if n == 0:
        return BTResult(np.zeros(0), True, 0, [], ["no runs"], np.zeros(0), prior, True, games)
    if n == 1:
        return BTResult(
            np.full(1, float(anchor_rating)),
            True,
            0,
            components,
            ["only one run: nothing to compare, rating is the anchor"],
            np.zeros(1),
            prior,
            True,
            games,
        )
    used_prior = prior
    if not strong:
        warnings.extend(_diagnose(w, components))
        if prior == 0.0:
            used_prior = fallback_prior
            warnings.append(
                f"maximum-likelihood estimate does not exist; added a pseudo-count prior of "
                f"{used_prior:g} virtual tied game(s) per run against a virtual reference run"
            )
    fit = fit_bradley_terry_batch(w[None], prior=used_prior, init=init, tol=tol, max_iter=max_iter)
    beta = fit.beta[0] - fit.beta[0].mean()
    converged = bool(fit.converged[0])
    if not converged:
        warnings.append(f"Newton did not converge in {max_iter} iterations")
    ratings = anchor_ratings(beta, anchor=anchor, anchor_rating=anchor_rating)
    return BTResult(
        ratings=ratings,
        converged=converged,
        iterations=int(fit.iterations[0]),
        components=components,
        warnings=warnings,
        beta=beta,
        prior=float(used_prior),
        mle_exists=strong,
        games=games,
    )
