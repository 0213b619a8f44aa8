"""Vote efficiency: how many human votes each pair policy needs, on simulated campaigns.

Every campaign has a known truth: ``runs`` runs with Bradley-Terry strengths spread like
Elo ~ Normal(0, ``--sd-elo``) (120 by default: public arenas' top 20-50 entries have an Elo
standard deviation of about 100-150), placed at the expected order statistics of that normal
(:func:`truth`) and shuffled per repetition.  A vote:

* the pair comes from the policy under test, through :func:`ratings.policies.serve_pairs` (the
  serving order of ``evalhub/campaigns/serving/leasing.py``: top priority first, then the
  least-judged tasks; ``--tasks-per-pair`` tasks per pair) with priorities refreshed every
  ``--window`` votes (production refreshes every 20 s: 50 votes is 2.5 votes/s, e.g. 15
  annotators voting every 6 s).  The policies are the functions campaigns call
  (``ratings.policies``): ``balanced``, ``active`` (``evalhub/campaigns/building/active.py``
  calls ``active_priorities``), and the new ``uncertainty`` and ``top``; ``uniform`` draws every
  pair uniformly at random;
* the two images are shown in random order; a tie with probability ``--tie-rate`` (5 %);
  otherwise the left one wins with probability ``sigma(beta_left - beta_right + b)``, ``b`` the
  logit of 0.5 + ``--position-bias`` (3 points: equal runs, left wins 53 %);
* optionally (``--unreliable``) a share of votes comes from unreliable annotators, a third
  each random, always-left and fast (fast ones answer at random), with no quality control.

At checkpoints (geometric grid, ``--points-per-doubling``) every repetition is fitted as the
leaderboard fits it (Bradley-Terry MLE, the fallback pseudo-count when the MLE does not exist)
and scored against the truth:

1. ``best_first``: share of repetitions whose top-rated run is the true best (target >= 0.95);
2. ``tau``: mean Kendall tau (tau-a; no ties in the truth) of fitted and true ratings (>= 0.9);
3. ``width``: mean width of the runs' 95 % intervals, Elo (<= 50).  Laplace intervals
   ``r_i +- 1.96 se_i`` from the inverse Fisher information of the mean-centred ratings: the
   leaderboard's percentile bootstrap agrees within a few per cent at these vote counts
   (``tests/ratings/test_ratings_policies.py`` checks 15 %), and 200 repetitions x 40
   checkpoints of a 1,000-round bootstrap would take hours.

Votes needed = the first checkpoint meeting the criterion, interpolated (log votes) from the one
before.  ``--best-of-k`` adds best-of-K screens with uniformly random sets (the uniform family)
fitted with Plackett-Luce (``ratings.fit_plackett_luce_batch``), for criterion 2 in screens.
Human-readable table first; the last line is one JSON object.

Usage::

    nice python bench/efficiency.py [--runs 8 20 50] [--reps 200] [--active-reps 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

# One BLAS thread: the bench multiplies many small matrices, where OpenBLAS threads only
# contend (20x slower on a busy 2-core machine).  Set before numpy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from scipy.special import expit, logit
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import cpu_model
from ratings import ELO_PER_NAT, fit_bradley_terry_batch
from ratings.bradley_terry import strongly_connected_batch
from ratings.plackett_luce import Rankings, fit_plackett_luce_batch
from ratings.policies import (
    POLICIES,
    PairPriorities,
    PairVotes,
    serve_pairs,
    uniform_pairs,
)

CRITERIA = ("best_first", "tau", "width")
GOALS = {"best_first": 0.95, "tau": 0.9, "width": 50.0}


@dataclass(frozen=True)
class Setting:
    """One simulated campaign design."""

    runs: int
    reps: int
    sd_elo: float = 120.0
    tie_rate: float = 0.05
    position_bias: float = 0.03
    unreliable: float = 0.0
    tasks_per_pair: int = 200
    window: int = 50
    max_votes: int = 10_000
    points_per_doubling: int = 6


@dataclass
class Curve:
    """Criteria at each checkpoint (means over repetitions)."""

    votes: list[int] = field(default_factory=list)
    best_first: list[float] = field(default_factory=list)
    tau: list[float] = field(default_factory=list)
    width: list[float] = field(default_factory=list)

    def needed(self, criterion: str) -> float | None:
        """Votes at which the criterion is first met, log-interpolated; None if never."""
        values = getattr(self, criterion)
        goal = GOALS[criterion]
        met = [(v >= goal) if criterion != "width" else (v <= goal) for v in values]
        for k, ok in enumerate(met):
            if not ok:
                continue
            if k == 0:
                return float(self.votes[0])
            x0, x1 = math.log(self.votes[k - 1]), math.log(self.votes[k])
            y0, y1 = values[k - 1], values[k]
            frac = 1.0 if y1 == y0 else min(1.0, max(0.0, (goal - y0) / (y1 - y0)))
            return round(math.exp(x0 + frac * (x1 - x0)), 0)
        return None


def checkpoints(setting: Setting) -> list[int]:
    """Geometric grid of vote counts, multiples of the refresh window."""
    n_pairs = setting.runs * (setting.runs - 1) // 2
    start = max(setting.window, n_pairs // 2)
    grid, v = set(), float(start)
    while v <= setting.max_votes:
        grid.add(math.ceil(v / setting.window) * setting.window)
        v *= 2 ** (1 / setting.points_per_doubling)
    return sorted(g for g in grid if g <= setting.max_votes)


def truth(setting: Setting, reps: int, rng: np.random.Generator) -> np.ndarray:
    """True log-strengths (reps, runs), nats: the expected order statistics of Normal(0, sd)
    Elo (``sd * Phi^-1((i - 1/2) / n)``), in a random order per repetition.  The same spread
    every time, so "the best run" is always the same distance ahead (e.g. 62 Elo at 20 runs,
    sd 120) instead of sometimes 1 Elo, which no campaign could resolve."""
    n = setting.runs
    elo = setting.sd_elo * norm.ppf((np.arange(n) + 0.5) / n)
    return rng.permuted(np.broadcast_to(elo, (reps, n)), axis=1) / ELO_PER_NAT


def evaluate(wins: np.ndarray, ties: np.ndarray, true_beta: np.ndarray,
             init: np.ndarray | None) -> tuple[float, float, float, np.ndarray]:
    """The leaderboard's fit of every repetition, scored against the truth."""
    n = wins.shape[-1]
    w = wins + 0.5 * ties
    prior = np.where(strongly_connected_batch(w), 0.0, 1.0)
    fit = fit_bradley_terry_batch(w, prior=prior, init=init, tol=1e-8)
    beta = fit.beta - fit.beta.mean(axis=1, keepdims=True)
    best = float((beta.argmax(axis=1) == true_beta.argmax(axis=1)).mean())
    i, j = np.triu_indices(n, k=1)
    concord = np.sign(beta[:, i] - beta[:, j]) * np.sign(true_beta[:, i] - true_beta[:, j])
    tau = float(concord.mean())
    # Laplace: Fisher information H (+ the prior's curvature), centred covariance C M^-1 C with
    # M = H + 11^T/n where H is singular (no prior); see the module docstring.
    p = expit(beta[:, :, None] - beta[:, None, :])
    games = wins + np.swapaxes(wins, 1, 2) + ties
    weight = games * p * (1.0 - p)
    hess = -weight
    diag = np.arange(n)
    q = expit(beta)
    hess[:, diag, diag] = weight.sum(axis=2) + prior[:, None] * q * (1.0 - q)
    hess += (prior == 0.0)[:, None, None] / n
    cov = np.linalg.inv(hess)
    centre = np.eye(n) - 1.0 / n
    var = np.einsum("ij,rjk,ki->ri", centre, cov, centre)
    width = float((2 * 1.959964 * ELO_PER_NAT * np.sqrt(np.maximum(var, 0.0))).mean())
    return best, tau, width, fit.beta


def priorities_for(policy: str, votes: PairVotes, window: int, active_reps: int
                   ) -> PairPriorities:
    """The policy's priorities for every repetition (the production functions)."""
    if policy == "active":
        rows = []
        for r in range(votes.wins.shape[0]):
            one = PairVotes(votes.wins[r], votes.ties[r])
            # Campaigns seed the bootstrap with their id: repetition r plays campaign r.
            rows.append(POLICIES["active"](one, seed=r).priority)
        first = POLICIES["balanced"](PairVotes.empty(votes.n))
        return PairPriorities(first.i, first.j, np.stack(rows))
    return POLICIES[policy](votes, seed=window)


def simulate(policy: str, setting: Setting, seed: int) -> Curve:
    """Run ``setting.reps`` campaigns side by side under ``policy``."""
    rng = np.random.default_rng(seed)
    reps, n = setting.reps, setting.runs
    true_beta = truth(setting, reps, rng)
    pi, pj = np.triu_indices(n, k=1)
    n_pairs = pi.size
    wins, ties = np.zeros((reps, n, n)), np.zeros((reps, n, n))
    served = np.zeros((reps, n_pairs), dtype=np.int64)
    bias = logit(0.5 + setting.position_bias)
    rep_idx = np.repeat(np.arange(reps), setting.window).reshape(reps, setting.window)
    marks = set(checkpoints(setting))
    curve, init, total, window = Curve(), None, 0, 0
    while total < setting.max_votes:
        votes = PairVotes(wins, ties)
        if policy == "uniform":
            picks = uniform_pairs(n_pairs, setting.window, rng, campaigns=reps)
        else:
            pri = priorities_for(policy, votes, window, reps)
            picks = serve_pairs(pri, served, setting.window, rng,
                                tasks_per_pair=setting.tasks_per_pair)
        np.add.at(served, (rep_idx, picks), 1)
        a, b = pi[picks], pj[picks]
        left_a = rng.random(picks.shape) < 0.5
        left, right = np.where(left_a, a, b), np.where(left_a, b, a)
        bl = np.take_along_axis(true_beta, left, axis=1)
        br = np.take_along_axis(true_beta, right, axis=1)
        left_wins = rng.random(picks.shape) < expit(bl - br + bias)
        tie = rng.random(picks.shape) < setting.tie_rate
        if setting.unreliable > 0:
            bad = rng.random(picks.shape) < setting.unreliable
            kind = rng.integers(0, 3, picks.shape)  # 0 random, 1 always left, 2 fast (random)
            coin = rng.random(picks.shape) < 0.5
            left_wins = np.where(bad, np.where(kind == 1, True, coin), left_wins)
            tie = np.where(bad & (kind == 1), False, tie)
        winner, loser = np.where(left_wins, left, right), np.where(left_wins, right, left)
        np.add.at(wins, (rep_idx[~tie], winner[~tie], loser[~tie]), 1.0)
        np.add.at(ties, (rep_idx[tie], a[tie], b[tie]), 1.0)
        np.add.at(ties, (rep_idx[tie], b[tie], a[tie]), 1.0)
        total += setting.window
        window += 1
        if total in marks:
            best, tau, width, init = evaluate(wins, ties, true_beta, init)
            curve.votes.append(total)
            curve.best_first.append(best)
            curve.tau.append(tau)
            curve.width.append(width)
    return curve


def simulate_best_of_k(setting: Setting, k: int, seed: int) -> Curve:
    """Best-of-``k`` screens: ``k`` uniformly random runs, the annotator picks the best
    (Plackett-Luce choice, the first-shown image favoured by the same position bias; a screen
    is skipped, no pick, with probability ``tie_rate``); fitted with Plackett-Luce."""
    rng = np.random.default_rng(seed)
    reps, n = setting.reps, setting.runs
    true_beta = truth(setting, reps, rng)
    sets = np.array(list(itertools.combinations(range(n), k)))
    # One ranking entry per (set, pick): a campaign's votes are counts over these entries.
    rankings = Rankings.of(n, [(int(s[w]),) for s in sets for w in range(k)],
                           shown=[tuple(int(x) for x in s) for s in sets for _ in range(k)])
    counts = np.zeros((reps, len(sets) * k))
    bias = logit(0.5 + setting.position_bias)
    marks = set(checkpoints(setting))
    curve, init, total = Curve(), None, 0
    while total < setting.max_votes:
        chosen = rng.integers(0, len(sets), (reps, setting.window))
        order = rng.permuted(np.broadcast_to(np.arange(k), (reps, setting.window, k)), axis=2)
        members = sets[chosen]  # (reps, window, k), in set order
        logits = np.take_along_axis(true_beta[:, None, :], members, axis=2)
        logits = logits + bias * (order == 0)  # the slot shown first
        pick = (logits + rng.gumbel(size=logits.shape)).argmax(axis=2)
        skipped = rng.random(chosen.shape) < setting.tie_rate
        rows = np.repeat(np.arange(reps), setting.window).reshape(chosen.shape)
        np.add.at(counts, (rows[~skipped], (chosen * k + pick)[~skipped]), 1.0)
        total += setting.window
        if total in marks:
            # 1e-4 nats (0.02 Elo) is far below what reorders runs; MM is linear, so a tight
            # tolerance costs hundreds of iterations over every (set, pick) of every campaign.
            beta = fit_plackett_luce_batch(rankings, counts, tol=1e-4, init=init)
            init = beta
            i, j = np.triu_indices(n, k=1)
            concord = np.sign(beta[:, i] - beta[:, j]) * np.sign(true_beta[:, i]
                                                               - true_beta[:, j])
            curve.votes.append(total)
            curve.best_first.append(float((beta.argmax(1) == true_beta.argmax(1)).mean()))
            curve.tau.append(float(concord.mean()))
            curve.width.append(float("nan"))
    return curve


def _fmt(v: float | None, cap: int) -> str:
    return f"> {cap:,}" if v is None else f"{v:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[8, 20, 50])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--active-reps", type=int, nargs="+", default=[200],
                        help="repetitions for the active policy per entry of --runs (a "
                             "200-round bootstrap per campaign per refresh); the last value "
                             "repeats")
    parser.add_argument("--active-max-runs", type=int, default=20,
                        help="largest campaign the active policy is simulated on")
    parser.add_argument("--policies", nargs="+",
                        default=["uniform", "balanced", "active", "uncertainty", "top"])
    parser.add_argument("--max-votes", type=int, nargs="+", default=[6000, 16000, 40000],
                        help="vote budget per entry of --runs")
    parser.add_argument("--sd-elo", type=float, default=120.0)
    parser.add_argument("--tie-rate", type=float, default=0.05)
    parser.add_argument("--position-bias", type=float, default=0.03)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--tasks-per-pair", type=int, default=200)
    parser.add_argument("--points-per-doubling", type=int, default=6)
    parser.add_argument("--unreliable", type=float, default=0.15,
                        help="share of unreliable votes in the extra run at --unreliable-runs")
    parser.add_argument("--unreliable-runs", type=int, default=20)
    parser.add_argument("--best-of-k", type=int, default=4)
    parser.add_argument("--best-of-k-runs", type=int, default=20)
    parser.add_argument("--best-of-k-max-screens", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.time()
    load_before = os.getloadavg()

    results: dict[str, dict[str, dict]] = {}
    curves: dict[tuple[int, str], Curve] = {}
    for runs, cap in zip(args.runs, args.max_votes, strict=True):
        results[str(runs)] = {}
        for policy in args.policies:
            if policy == "active" and runs > args.active_max_runs:
                continue
            k = args.runs.index(runs)
            active_reps = args.active_reps[min(k, len(args.active_reps) - 1)]
            reps = active_reps if policy == "active" else args.reps
            setting = Setting(runs=runs, reps=reps, sd_elo=args.sd_elo, tie_rate=args.tie_rate,
                              position_bias=args.position_bias, window=args.window,
                              tasks_per_pair=args.tasks_per_pair, max_votes=cap,
                              points_per_doubling=args.points_per_doubling)
            t0 = time.time()
            curve = simulate(policy, setting, seed=args.seed + runs)
            curves[(runs, policy)] = curve
            needed = {c: curve.needed(c) for c in CRITERIA}
            results[str(runs)][policy] = {"votes_needed": needed, "reps": reps,
                                          "max_votes": cap,
                                          "seconds": round(time.time() - t0, 1)}
            print(f"{runs:>3} runs  {policy:<12} " + "  ".join(
                f"{c}={_fmt(needed[c], cap)}" for c in CRITERIA)
                + f"  ({reps} reps, {time.time() - t0:.0f} s)", flush=True)

    # Best-of-K against pairwise, both uniform, criterion 2 in screens.
    best_of_k = None
    if args.best_of_k and args.best_of_k_runs in args.runs:
        runs = args.best_of_k_runs
        cap = args.best_of_k_max_screens
        setting = Setting(runs=runs, reps=args.reps, sd_elo=args.sd_elo, tie_rate=args.tie_rate,
                          position_bias=args.position_bias, window=args.window,
                          max_votes=cap, points_per_doubling=args.points_per_doubling)
        t0 = time.time()
        curve = simulate_best_of_k(setting, args.best_of_k, seed=args.seed + 1000 + runs)
        pair_tau = curves[(runs, "uniform")].needed("tau") if (runs, "uniform") in curves else None
        k_tau = curve.needed("tau")
        best_of_k = {"k": args.best_of_k, "runs": runs, "screens_tau": k_tau,
                     "screens_best_first": curve.needed("best_first"),
                     "pairwise_uniform_screens_tau": pair_tau,
                     "ratio": (round(k_tau / pair_tau, 3) if k_tau and pair_tau else None),
                     "seconds": round(time.time() - t0, 1)}
        print(f"best-of-{args.best_of_k} at {runs} runs (uniform sets, Plackett-Luce): "
              f"tau>=0.9 after {_fmt(k_tau, cap)} screens, pairwise uniform "
              f"{_fmt(pair_tau, cap)} (ratio {best_of_k['ratio']})", flush=True)

    # Unreliable annotators without quality control: tau at the clean campaign's budget.
    unreliable = None
    if args.unreliable > 0 and args.unreliable_runs in args.runs:
        runs = args.unreliable_runs
        cap = args.max_votes[args.runs.index(runs)]
        unreliable = {"share": args.unreliable, "runs": runs, "quality_control": False,
                      "policies": {}}
        for policy in ("uniform", "uncertainty"):
            if (runs, policy) not in curves:
                continue
            clean = curves[(runs, policy)]
            setting = Setting(runs=runs, reps=args.reps, sd_elo=args.sd_elo,
                              tie_rate=args.tie_rate, position_bias=args.position_bias,
                              window=args.window, tasks_per_pair=args.tasks_per_pair,
                              max_votes=cap, unreliable=args.unreliable,
                              points_per_doubling=args.points_per_doubling)
            noisy = simulate(policy, setting, seed=args.seed + runs)
            budget = clean.needed("tau")
            at = None
            if budget is not None:
                k = next(i for i, v in enumerate(clean.votes) if v >= budget)
                at = {"votes": clean.votes[k], "tau_clean": round(clean.tau[k], 4),
                      "tau_unreliable": round(noisy.tau[k], 4),
                      "drop": round(clean.tau[k] - noisy.tau[k], 4)}
            unreliable["policies"][policy] = {"at_clean_tau_budget": at,
                                              "votes_needed_tau": noisy.needed("tau")}
            print(f"{args.unreliable:.0%} unreliable votes, {runs} runs, {policy}, no quality "
                  f"control: {at}", flush=True)

    # Targets of issue 17 for this bench (20 runs).
    t20 = results.get("20", {})
    uni = t20.get("uniform", {}).get("votes_needed", {})
    others = {p: r["votes_needed"] for p, r in t20.items() if p != "uniform"}

    def best_ratio(criterion: str) -> tuple[str | None, float | None]:
        base = uni.get(criterion)
        found = [(base / v[criterion], p) for p, v in others.items()
                 if base and v.get(criterion)]
        if not found:
            return None, None
        ratio, policy = max(found)
        return policy, round(ratio, 2)

    p1, r1 = best_ratio("best_first")
    p2, r2 = best_ratio("tau")
    targets = {
        "best_first_3x_fewer_than_uniform_at_20_runs": bool(r1 and r1 >= 3.0),
        "tau_1_5x_fewer_than_uniform_at_20_runs": bool(r2 and r2 >= 1.5),
        "best_of_4_tau_in_half_the_screens": bool(best_of_k and best_of_k["ratio"]
                                                  and best_of_k["ratio"] <= 0.5),
        # Needs quality control (not in this bench): reported without it, so not met here.
        "unreliable_15pct_tau_drop_at_most_0_02_with_qc": False,
        "same_policy_code_as_production": True,
    }
    print(f"20 runs: best first {r1}x fewer votes than uniform ({p1}); tau {r2}x ({p2})")
    summary = {
        "bench": "efficiency",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()],
                    "python": platform.python_version(), "numpy": np.__version__},
        "setting": {k: v for k, v in asdict(Setting(runs=0, reps=args.reps)).items()
                    if k not in ("runs", "max_votes")} | {
            "sd_elo": args.sd_elo, "tie_rate": args.tie_rate,
            "position_bias": args.position_bias, "window": args.window,
            "tasks_per_pair": args.tasks_per_pair, "active_reps": args.active_reps,
            "truth": "expected normal order statistics, shuffled"},
        "results": results,
        "ratios_20_runs": {"best_first": {"policy": p1, "ratio": r1},
                           "tau": {"policy": p2, "ratio": r2}},
        "best_of_k": best_of_k,
        "unreliable": unreliable,
        "seconds": round(time.time() - started, 1),
        "targets": targets,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
