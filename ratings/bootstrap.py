"""Bootstrap confidence intervals for Bradley-Terry ratings by multinomial cell resampling.

Why cells.  The nonparametric bootstrap resamples the ``N`` votes with replacement.  Votes only
enter Bradley-Terry through the counts of the cells ``(pair, outcome)`` (see
:class:`ratings.counts.PairCells`), and ``N`` draws with replacement from the vote list give
cell counts distributed exactly as

.. math:: (c_1, \\dots, c_K) \\sim \\mathrm{Multinomial}(N;\\ \\hat p_1, \\dots, \\hat p_K),
   \\qquad \\hat p_k = \\frac{\\text{votes in cell } k}{N}.

So drawing ``rng.multinomial(N, p_hat)`` is the same bootstrap, at a cost that depends on the
number of cells ``K <= 3 n (n-1) / 2`` rather than on ``N``.

Speed.  All rounds are fitted together by the batched Newton solver of
:mod:`ratings.bradley_terry`, warm-started from the point estimate (a resample moves ratings by
about one standard error, so two or three Newton steps reach ``tol``).  Rounds are processed in
fixed-size chunks, each with its own child random stream; chunks run on a small thread pool
(numpy releases the GIL in the random draws and array kernels).  Because the streams belong to
chunks, not threads, results are identical for any number of workers.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .bradley_terry import (
    DEFAULT_FALLBACK_PRIOR,
    BTResult,
    NewtonWorkspace,
    _newton,
    anchor_ratings,
    fit_bradley_terry,
    strongly_connected_batch,
)
from .counts import PairCells

__all__ = ["BootstrapResult", "bootstrap_ratings"]

#: Rounds per chunk: small enough that the (chunk, n, n) work arrays stay in cache for n ~ 50.
_CHUNK_ELEMENTS = 160_000


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile-bootstrap summary of Bradley-Terry ratings.

    Attributes
    ----------
    point : BTResult
        Fit on the observed data.
    lower, upper : ndarray of float64, shape (n,)
        Percentile confidence bounds (Elo points), e.g. 2.5th and 97.5th percentiles.
    median, std : ndarray of float64, shape (n,)
        Bootstrap median and standard deviation (= bootstrap standard error), Elo points.
    samples : ndarray of float64, shape (R, n)
        Anchored ratings of every round.
    percentiles : tuple of float
        The percentiles used for ``lower`` and ``upper``.
    fallback_rounds : int
        Rounds whose resample had no finite MLE and were fitted with the fallback pseudo-count.
    warnings : list of str
        The point fit's warnings plus any about the resamples.
    """

    point: BTResult
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
    median: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]
    samples: npt.NDArray[np.float64] = field(repr=False)
    percentiles: tuple[float, float] = (2.5, 97.5)
    fallback_rounds: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def ratings(self) -> npt.NDArray[np.float64]:
        """Point-estimate ratings (Elo points)."""
        return self.point.ratings


def _fill_wins(
    cells: PairCells, draws: npt.NDArray[np.float64], out: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Win matrices (r, n, n) from per-cell draws (r, p, 3), written into ``out``."""
    out.fill(0.0)
    half_tie = 0.5 * draws[..., 2]
    out[:, cells.i, cells.j] = draws[..., 0] + half_tie
    out[:, cells.j, cells.i] = draws[..., 1] + half_tie
    return out


def bootstrap_ratings(
    cells: PairCells,
    *,
    rounds: int = 1000,
    percentiles: tuple[float, float] = (2.5, 97.5),
    seed: int | np.random.SeedSequence | None = None,
    prior: float = 0.0,
    fallback_prior: float = DEFAULT_FALLBACK_PRIOR,
    anchor: int | None = None,
    anchor_rating: float = 1000.0,
    tol: float = 1e-6,
    max_iter: int = 50,
    workers: int | None = None,
    point: BTResult | None = None,
) -> BootstrapResult:
    """Percentile bootstrap of Bradley-Terry ratings by multinomial resampling of vote cells.

    For each round :math:`b = 1..R`: draw cell counts
    :math:`c^{(b)} \\sim \\mathrm{Multinomial}(N, \\hat p)`, rebuild the win matrix, refit
    Bradley-Terry (same ``prior``, anchoring and warm start from the point estimate) and keep the
    anchored ratings :math:`r^{(b)}`.  Bounds are the ``percentiles`` of
    :math:`\\{r^{(b)}_i\\}_b` per run.

    With mean anchoring (default) the intervals describe each run's rating *relative to the
    average run*; with ``anchor=k`` they are relative to run ``k`` (whose interval is then a
    point).

    Parameters
    ----------
    cells : PairCells
        Observed votes, from :func:`ratings.counts.aggregate_cells`.  Counts are rounded to
        integers for the multinomial (weighted votes are resampled as that many votes).
    rounds : int
        Number of bootstrap rounds ``R``.
    percentiles : (float, float)
        Lower and upper percentiles in [0, 100]; (2.5, 97.5) is a 95 % interval.
    seed : int or SeedSequence, optional
        Seed for reproducible draws (same result for any ``workers``).
    prior, fallback_prior, anchor, anchor_rating
        As in :func:`ratings.bradley_terry.fit_bradley_terry`.
    tol : float
        Newton tolerance in nats per round (1e-6 nats ≈ 2e-4 Elo; far below bootstrap noise).
    max_iter : int
        Newton iteration cap per round.
    workers : int, optional
        Threads; default ``min(os.cpu_count(), number of chunks)``.
    point : BTResult, optional
        Precomputed point fit on the same cells (saves one fit).

    Returns
    -------
    BootstrapResult
    """
    n = cells.n
    observed = cells.to_wins()
    if point is None:
        point = fit_bradley_terry(
            observed,
            prior=prior,
            fallback_prior=fallback_prior,
            anchor=anchor,
            anchor_rating=anchor_rating,
        )
    warnings = list(point.warnings)
    flat = np.rint(cells.counts).ravel()
    total = int(flat.sum())
    if n < 2 or total == 0 or rounds <= 0:
        samples = np.tile(point.ratings, (max(rounds, 0), 1))
        warnings.append("nothing to resample: intervals collapse to the point estimate")
        return BootstrapResult(
            point,
            point.ratings.copy(),
            point.ratings.copy(),
            point.ratings.copy(),
            np.zeros(n),
            samples,
            percentiles,
            0,
            warnings,
        )
    # Only non-empty cells can be drawn; skipping the rest makes the multinomial cheaper.
    nonzero = np.flatnonzero(flat > 0)
    p_hat = flat[nonzero] / total
    base_prior = point.prior
    chunk = max(1, min(rounds, _CHUNK_ELEMENTS // (n * n)))
    starts = list(range(0, rounds, chunk))
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    streams = root.spawn(len(starts))
    beta = np.empty((rounds, n))
    fallback = np.zeros(rounds, dtype=bool)
    unconverged = np.zeros(rounds, dtype=bool)
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(starts)))
    observed_edges = observed > 0

    def run_chunks(worker: int) -> None:
        ws = NewtonWorkspace(chunk, n)
        wins_buf = np.empty((chunk, n, n))
        draws_full = np.zeros((chunk, cells.counts.size))
        for c in range(worker, len(starts), n_workers):
            lo = starts[c]
            r = min(chunk, rounds - lo)
            rng = np.random.default_rng(streams[c])
            draws_full[:r, nonzero] = rng.multinomial(total, p_hat, size=r)
            w = _fill_wins(cells, draws_full[:r].reshape(r, -1, 3), wins_buf[:r])
            pr = np.full(r, base_prior)
            if base_prior == 0.0:
                # A resample can lose strong connectivity only by emptying a directed edge
                # (i beat j) that the data had; check those rare rounds exactly.
                # (Not "rare" with many runs and few votes per pair: all of them are checked in
                # one batched reachability computation, not one graph search per round.)
                lost = np.flatnonzero(((w == 0.0) & observed_edges).any(axis=(1, 2)))
                if lost.size:
                    pr[lost[~strongly_connected_batch(w[lost])]] = fallback_prior
            b, conv, _ = _newton(w, pr, np.broadcast_to(point.beta, (r, n)), tol, max_iter, 2.0, ws)
            bad = ~conv & (pr == 0.0)
            if bad.any():
                # Safety net: anything that still fails to converge gets the pseudo-count.
                pr[bad] = fallback_prior
                b_bad, conv_bad, _ = _newton(w[bad].copy(), pr[bad], b[bad], tol, max_iter, 2.0)
                b[bad], conv[bad] = b_bad, conv_bad
            beta[lo : lo + r] = b
            fallback[lo : lo + r] = pr != base_prior
            unconverged[lo : lo + r] = ~conv

    if n_workers == 1:
        run_chunks(0)
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            list(pool.map(run_chunks, range(n_workers)))

    samples = anchor_ratings(beta, anchor=anchor, anchor_rating=anchor_rating)
    lower, upper = np.percentile(samples, percentiles, axis=0)
    n_fallback = int(fallback.sum())
    if n_fallback:
        warnings.append(
            f"{n_fallback} of {rounds} bootstrap resamples had no finite MLE (a run without "
            f"wins/losses or a broken comparison graph) and used a pseudo-count of "
            f"{fallback_prior:g}; intervals for sparsely compared runs are unreliable"
        )
    if unconverged.any():
        warnings.append(f"{int(unconverged.sum())} bootstrap rounds did not converge")
    return BootstrapResult(
        point=point,
        lower=lower,
        upper=upper,
        median=np.median(samples, axis=0),
        std=samples.std(axis=0, ddof=1),
        samples=samples,
        percentiles=percentiles,
        fallback_rounds=n_fallback,
        warnings=warnings,
    )
