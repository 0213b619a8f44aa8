"""Pair-policy experiments for criterion 2 of ``bench/efficiency.py`` (Kendall tau >= 0.9).

Not production policies: candidates tried against issue 17's target (20 runs, tau 0.9 with
>= 1.5x fewer votes than uniform), kept so that the figures in ``docs/benchmarks.md`` ("Vote
efficiency", "What was tried for criterion 2") can be re-run.  Each candidate is registered
in ``ratings.policies.POLICIES`` for this process only and simulated by
``bench.efficiency.simulate`` (the bench's campaigns, serving order and checkpoints), so the
figures are comparable with the bench's rows for the same ``--seed`` (the bench seeds a
20-run setting with ``seed + 20``).

Candidates:

``kg``
    One-step lookahead ("knowledge gradient") on the expected number of misordered pairs.
    Under the Laplace posterior a pair's difference is ``N(d, s^2)``; ``m`` fantasised votes
    on pair ``e`` shrink its variance to ``s'^2`` (Sherman-Morrison on the full covariance)
    and move its mean by ``N(0, s^2 - s'^2)``, so its expected misorder afterwards is
    ``P(sign X != sign Y)`` for ``X ~ N(d, s^2)``, ``Y ~ N(d, s^2 - s'^2)``, ``cov = s^2 -
    s'^2`` (:func:`misorder_after`, Owen's T).  The tier (``n / 2`` pairs, ``50 / tier`` votes
    each) is chosen greedily by the largest drop of the sum over all pairs, each pick updating
    the covariance.  Costs ``O(P^2)`` per pick (the 40 best pairs of the first pick are the
    candidates of the later ones).
``warm<N>_<policy>``
    ``balanced`` (every priority 0: about uniform) for the first ``N`` votes, then ``policy``.
``uncertainty_var<x>``
    ``uncertainty`` with the posterior covariance scaled by ``x`` (a calibration check).
``eoc<k>``
    Expected opportunity cost: ``p(1-p) s^k (phi(h) - h Phi(-h))``, ``h = |d| / s`` (the
    expected true gap of a misordered pair, times the information of a vote).
``sharp<k>``
    ``uncertainty`` with a sharper or flatter Gaussian factor: ``p(1-p) v exp(-k d^2 / 2v)``
    (``k = 1`` is ``uncertainty``).
``adjacent<r>``
    ``uncertainty``'s score on the pairs at most ``r`` places apart in the posterior mode's
    ranking only (the rest times 1e-3): sort refinement, votes on neighbours.
``horizon<F>``
    The misordered pairs expected once ``F`` times the votes so far (at least 200) have been
    spread uniformly over the pairs: each pair's loss weight is the exact slope
    :func:`misorder_slope` of its misorder in its final variance, and a pair's score is how
    fast its votes lower the weighted final variances, ``p(1-p) x^T S L_w S x`` (``S`` the
    final covariance, ``L_w`` the Laplacian of the weights).  The tier is the ``n / 2`` best.
``oracle``
    *Told the truth* (not a policy: a bound): the tier is the pairs the posterior mode orders
    wrongly, those with the largest true gap first, then ``uncertainty``'s order.  What a
    policy could save if it knew which pairs are wrong.

Any name of ``ratings.policies.POLICIES`` and ``uniform`` run as in the bench.  One line per
candidate, then one JSON line: votes needed per candidate and, when ``uniform`` ran, each
candidate's ratio to it for criterion 2 and whether it reaches the 1.5x target.

Usage::

    nice -n 19 python bench/policy_experiments.py uniform uncertainty warm500_uncertainty eoc2 \\
        oracle --reps 200 --seed 0 --max-votes 2600
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from scipy.special import expit, ndtr, owens_t
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.efficiency import Setting, simulate, truth
from ratings import policies
from ratings.policies import (
    PairPriorities,
    PairVotes,
    Posterior,
    PriorityPolicy,
    balanced_priorities,
    bt_posterior,
    default_tier,
    order_gain,
    tiered_priorities,
)


def misorder_after(h: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Expected misorder of a pair after fantasised votes, ``P(sign X != sign Y)``.

    ``h = |d| / s`` now, ``q^2`` the share of the variance the votes resolve: ``X ~ N(h, 1)``
    (the truth), ``Y ~ N(h, q^2)`` (the posterior mean afterwards), ``cov(X, Y) = q^2``.  With
    ``k = h / q`` and ``Phi2`` the bivariate normal CDF of correlation ``q``:
    ``Phi(h) + Phi(k) - 2 Phi2(h, k; q)``, ``Phi2`` by Owen's T.  ``q = 0``: ``Phi(-h)`` (no
    change); ``h = 0``: ``1/2 - arcsin(q) / pi``; ``q = 1``: 0.
    """
    h, q = np.broadcast_arrays(np.asarray(h, dtype=float), np.asarray(q, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = h / q
        sq = np.sqrt(1.0 - q * q)
        phi2 = (0.5 * ndtr(h) + 0.5 * ndtr(k) - owens_t(h, (k - q * h) / (h * sq))
                - owens_t(k, (h - q * k) / (k * sq)))
        f = ndtr(h) + ndtr(k) - 2.0 * phi2
    f = np.where(h == 0, 0.5 - np.arcsin(np.clip(q, 0.0, 1.0)) / np.pi, f)
    f = np.where(q == 0, ndtr(-h), f)
    return np.where(q >= 1, 0.0, f)


# misorder_after on a grid of (h, sqrt(r)), interpolated bilinearly: Owen's T for every
# (pair, candidate) of 200 campaigns would dominate the run.
_H_MAX, _H_N, _Q_N = 6.0, 301, 101
_TABLE = misorder_after(*np.meshgrid(np.linspace(0, _H_MAX, _H_N), np.linspace(0, 1, _Q_N),
                                     indexing="ij"))


def _misorder_table(h: np.ndarray, r: np.ndarray) -> np.ndarray:
    x = np.clip(h, 0, _H_MAX) / _H_MAX * (_H_N - 1)
    y = np.sqrt(np.clip(r, 0, 1)) * (_Q_N - 1)
    x0 = np.minimum(x.astype(np.int64), _H_N - 2)
    y0 = np.minimum(y.astype(np.int64), _Q_N - 2)
    fx, fy = x - x0, y - y0
    return ((_TABLE[x0, y0] * (1 - fy) + _TABLE[x0, y0 + 1] * fy) * (1 - fx)
            + (_TABLE[x0 + 1, y0] * (1 - fy) + _TABLE[x0 + 1, y0 + 1] * fy) * fx)


def misorder_slope(d: np.ndarray, s2: np.ndarray, st2: np.ndarray) -> np.ndarray:
    """Slope of a pair's final misorder in its final variance, exact.

    Now the pair's difference is ``N(d, s^2)``; once votes have shrunk its variance to
    ``st^2`` the estimate has moved by ``N(0, r^2)``, ``r^2 = s^2 - st^2``, and the chance that
    its sign is wrong is :func:`misorder_after` ``M``.  Writing ``M`` with the bivariate normal
    CDF and differentiating (the derivative in the correlation is the bivariate density; the
    terms in ``Phi`` cancel because ``y - rho x = 0`` here):

    .. math:: \\frac{\\partial M}{\\partial s_t^2} = \\frac{e^{-d^2 / 2 r^2}}{2 \\pi\\, r\\, s_t}.

    Near ``r = 0`` (few votes to come) the weight is a spike at ``d = 0``: a one-step lookahead
    (``kg``) values only coin-flip pairs, which a few votes cannot settle; a longer horizon
    (larger ``r``) spreads the weight over pairs a few standard deviations apart.  Nats.
    """
    r2 = np.maximum(s2 - st2, 1e-12)
    return np.exp(-0.5 * d * d / r2) / (2.0 * np.pi * np.sqrt(r2 * np.maximum(st2, 1e-12)))


def _laplacian(weight: np.ndarray) -> np.ndarray:
    """Graph Laplacian of symmetric pair weights, (..., n, n) (the diagonal of ``weight``
    ignored)."""
    n = weight.shape[-1]
    diag = np.arange(n)
    lap = -np.array(weight, dtype=float)
    lap[..., diag, diag] = 0.0
    lap[..., diag, diag] = -lap.sum(axis=-1)
    return lap


def horizon_priorities(votes: PairVotes, *, seed: int | None = None, factor: float = 1.0,
                       floor: float = 200.0) -> PairPriorities:
    """The ``horizon<F>`` candidate (module docstring), ``F = factor``."""
    post = bt_posterior(votes)
    n = votes.n
    shape = post.beta.shape[:-1]
    beta = post.beta.reshape(-1, n)
    cov = post.cov.reshape(-1, n, n)
    total = votes.games.reshape(-1, n, n).sum(axis=(1, 2)) / 2
    future = np.maximum(factor * total, floor)
    p = expit(beta[:, :, None] - beta[:, None, :])
    info = p * (1.0 - p)
    pairs = n * (n - 1) / 2
    cov_t = np.linalg.inv(np.linalg.inv(cov) + (future / pairs)[:, None, None] * _laplacian(info))
    final = Posterior(beta=beta, cov=cov_t)
    d = beta[:, :, None] - beta[:, None, :]
    weight = misorder_slope(d, Posterior(beta=beta, cov=cov).diff_var(), final.diff_var())
    sandwich = cov_t @ _laplacian(weight) @ cov_t
    score = info * Posterior(beta=beta, cov=sandwich).diff_var()
    score[:, np.arange(n), np.arange(n)] = 0.0
    return tiered_priorities(score.reshape(*shape, n, n), default_tier(n))


def sharp_priorities(votes: PairVotes, *, seed: int | None = None, k: float = 1.0
                     ) -> PairPriorities:
    """The ``sharp<k>`` candidate: ``p(1-p) v exp(-k d^2 / 2v)``, tiered as ``uncertainty``."""
    post = bt_posterior(votes)
    v = np.maximum(post.diff_var(), 1e-12)
    d = post.beta[..., :, None] - post.beta[..., None, :]
    p = post.win_prob()
    score = p * (1.0 - p) * v * np.exp(-0.5 * k * d * d / v)
    diag = np.arange(votes.n)
    score[..., diag, diag] = 0.0
    return tiered_priorities(score, default_tier(votes.n))


def adjacent_priorities(votes: PairVotes, *, seed: int | None = None, places: int = 2
                        ) -> PairPriorities:
    """The ``adjacent<r>`` candidate: :func:`ratings.policies.order_gain` on the pairs at most
    ``places`` apart in the posterior mode's ranking (the rest scaled by 1e-3)."""
    post = bt_posterior(votes)
    gain = order_gain(post)
    rank = np.argsort(np.argsort(-post.beta, axis=-1), axis=-1)
    apart = np.abs(rank[..., :, None] - rank[..., None, :])
    return tiered_priorities(np.where(apart <= places, gain, 1e-3 * gain), default_tier(votes.n))


def kg_priorities(votes: PairVotes, *, seed: int | None = None, batch: int = 50,
                  candidates: int = 40) -> PairPriorities:
    """The ``kg`` candidate (module docstring)."""
    post = bt_posterior(votes)
    n = votes.n
    shape = post.beta.shape[:-1]
    beta = post.beta.reshape(-1, n)
    cov = post.cov.reshape(-1, n, n).copy()
    reps = beta.shape[0]
    pi_, pj_ = np.triu_indices(n, k=1)
    d = beta[:, pi_] - beta[:, pj_]
    s2 = np.maximum(cov[:, pi_, pi_] + cov[:, pj_, pj_] - 2 * cov[:, pi_, pj_], 1e-12)
    h = np.abs(d) / np.sqrt(s2)
    live = h < _H_MAX
    size = max(1, min(default_tier(n), pi_.size))
    p = expit(d)
    omega = (batch / size) * p * (1 - p)
    s2_now = s2.copy()
    base = np.where(live, _misorder_table(h, 0.0 * h), 0.0).sum(axis=1)
    chosen = np.zeros((reps, pi_.size), dtype=bool)
    rows = np.arange(reps)
    first, cand = None, None
    for _ in range(size):
        if cand is None:
            u_all = cov[:, :, pi_] - cov[:, :, pj_]  # Sigma x_e, (R, n, P)
            om = omega
        else:
            u_all = (np.take_along_axis(cov, pi_[cand][:, None, :], axis=2)
                     - np.take_along_axis(cov, pj_[cand][:, None, :], axis=2))
            om = np.take_along_axis(omega, cand, axis=1)
        m = u_all[:, pi_, :] - u_all[:, pj_, :]  # y_ab^T Sigma x_e, (R, P, C)
        xsx = (np.diagonal(m, axis1=1, axis2=2) if cand is None
               else np.take_along_axis(m, cand[:, None, :], axis=1)[:, 0, :])
        c = om / (1 + om * xsx)
        new = s2_now[:, :, None] - c[:, None, :] * m * m
        loss = np.where(live[:, :, None],
                        _misorder_table(h[:, :, None], 1 - new / s2[:, :, None]), 0.0).sum(1)
        gain = base[:, None] - loss
        if cand is None:
            first = gain.copy()
        else:
            gain[np.take_along_axis(chosen, cand, axis=1)] = -np.inf
        k = gain.argmax(axis=1)
        chosen[rows, k if cand is None else cand[rows, k]] = True
        u = u_all[rows, :, k]
        cov -= c[rows, k][:, None, None] * u[:, :, None] * u[:, None, :]
        s2_now, base = new[rows, :, k], loss[rows, k]
        if cand is None:
            cand = np.argsort(-first, axis=1)[:, :candidates]
    peak = first.max(axis=1, keepdims=True)
    pri = np.where(peak > 0, 0.999 * first / np.where(peak > 0, peak, 1.0), 0.0)
    pri = np.where(chosen, 1.0, np.minimum(pri, 0.999))
    return PairPriorities(pi_.astype(np.int64), pj_.astype(np.int64),
                          pri.reshape(*shape, pi_.size))


def warm_start(policy: str, warm: int) -> PriorityPolicy:
    """``balanced`` for the first ``warm`` votes of a campaign, then ``policy``."""
    inner = policies.POLICIES[policy]

    def priorities(votes: PairVotes, *, seed: int | None = None) -> PairPriorities:
        campaigns = max(1, int(np.prod(votes.wins.shape[:-2])))
        if float(np.asarray(votes.games).sum()) / 2 / campaigns < warm:
            return balanced_priorities(votes)
        return inner(votes, seed=seed)
    return priorities


def uncertainty_scaled(scale: float) -> PriorityPolicy:
    """``uncertainty`` with the posterior covariance times ``scale``."""
    def priorities(votes: PairVotes, *, seed: int | None = None) -> PairPriorities:
        post = bt_posterior(votes)
        post = Posterior(beta=post.beta, cov=post.cov * scale)
        return tiered_priorities(order_gain(post), default_tier(votes.n))
    return priorities


def eoc(power: float) -> PriorityPolicy:
    """Expected opportunity cost times the information of a vote (module docstring)."""
    def priorities(votes: PairVotes, *, seed: int | None = None) -> PairPriorities:
        post = bt_posterior(votes)
        sd = np.sqrt(np.maximum(post.diff_var(), 1e-12))
        h = np.abs(post.beta[..., :, None] - post.beta[..., None, :]) / sd
        p = post.win_prob()
        score = p * (1 - p) * sd ** power * (norm.pdf(h) - h * norm.cdf(-h))
        diag = np.arange(votes.n)
        score[..., diag, diag] = 0.0
        return tiered_priorities(score, default_tier(votes.n))
    return priorities


def oracle(true_beta: np.ndarray) -> PriorityPolicy:
    """Told the truth (a bound, not a policy): misordered pairs, largest true gap first."""
    def priorities(votes: PairVotes, *, seed: int | None = None) -> PairPriorities:
        post = bt_posterior(votes)
        i, j = np.triu_indices(votes.n, k=1)
        true = true_beta[:, i] - true_beta[:, j]
        wrong = np.sign(post.beta[:, i] - post.beta[:, j]) != np.sign(true)
        fallback = policies.uncertainty_priorities(votes).priority  # in [0, 1]
        score = np.where(wrong, 2.0 + np.abs(true), fallback)
        top = np.argsort(-score, axis=1, kind="stable")[:, :default_tier(votes.n)]
        pri = np.zeros_like(score)
        np.put_along_axis(pri, top, 1.0, axis=1)
        return PairPriorities(i.astype(np.int64), j.astype(np.int64), pri)
    return priorities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("candidates", nargs="+")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-votes", type=int, default=2600)
    parser.add_argument("--window", type=int, default=Setting.window,
                        help="votes between two refreshes of the priorities (the bench's 50: "
                             "2.5 votes/s at production's 20 s refresh)")
    args = parser.parse_args()
    setting = Setting(runs=args.runs, reps=args.reps, max_votes=args.max_votes,
                      window=args.window)
    seed = args.seed + args.runs  # as bench/efficiency.py seeds the setting
    needed: dict[str, dict[str, float | None]] = {}
    for name in args.candidates:
        if name == "kg":
            policies.POLICIES[name] = kg_priorities
        elif name.startswith("warm"):
            warm, inner = name[4:].split("_", 1)
            policies.POLICIES[name] = warm_start(inner, int(warm))
        elif name.startswith("uncertainty_var"):
            policies.POLICIES[name] = uncertainty_scaled(float(name[15:]))
        elif name.startswith("sharp"):
            policies.POLICIES[name] = partial(sharp_priorities, k=float(name[5:]))
        elif name.startswith("adjacent"):
            policies.POLICIES[name] = partial(adjacent_priorities, places=int(name[8:]))
        elif name.startswith("horizon"):
            policies.POLICIES[name] = partial(horizon_priorities, factor=float(name[7:]))
        elif name.startswith("eoc"):
            policies.POLICIES[name] = eoc(float(name[3:]))
        elif name == "oracle":
            # simulate() draws its truth first from default_rng(seed): the same draw.
            policies.POLICIES[name] = oracle(truth(setting, args.reps,
                                                   np.random.default_rng(seed)))
        started = time.time()
        curve = simulate(name, setting, seed=seed)
        print(f"{args.runs} runs  {name:<22} seed {args.seed}  {args.reps} reps  "
              f"best_first={curve.needed('best_first')}  tau={curve.needed('tau')}  "
              f"({time.time() - started:.0f} s)", flush=True)
        needed[name] = {"best_first": curve.needed("best_first"), "tau": curve.needed("tau")}
    base = needed.get("uniform", {}).get("tau")
    ratios = {name: round(base / v["tau"], 3) for name, v in needed.items()
              if base and v["tau"] and name != "uniform"}
    print(json.dumps({
        "bench": "policy_experiments", "runs": args.runs, "reps": args.reps, "seed": args.seed,
        "window": args.window,
        "max_votes": args.max_votes, "votes_needed": needed, "tau_ratio_to_uniform": ratios,
        # "oracle" is told the truth: a bound, not a policy, so it does not count.
        "targets": {"tau_1_5x_fewer_than_uniform": {
            name: r >= 1.5 for name, r in ratios.items() if name != "oracle"}}}))


if __name__ == "__main__":
    main()
