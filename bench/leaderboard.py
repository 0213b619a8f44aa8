"""Leaderboard benchmark: 1M simulated votes, 50 runs, BT fit + 1,000 bootstrap rounds.

Compares, in one process on the same simulated votes:

* ours: ``ratings.aggregate_cells`` + ``ratings.bootstrap_ratings`` (point fit + 1,000
  multinomial cell-resampling rounds, batched Newton); timed apart, the per-run statistics the
  leaderboard derives from them (``rank_intervals`` over the 1,000 rounds, ``run_records``);
* evalica: ``evalica.bradley_terry`` (Rust solver) and ``evalica.bootstrap`` (scipy bootstrap
  over vote rows, percentile method).  Its bootstrap refits on all 1M rows per round, so only
  ``--evalica-rounds`` rounds are run and the time is extrapolated linearly to 1,000;
* the logistic regression that Chatbot Arena used (scikit-learn ``LogisticRegression`` on the
  +1/-1 vote design matrix, no intercept, very weak L2), once on aggregated weighted rows and
  once on all 1M vote rows (sparse design).

All point estimates are put on the Elo scale (400/ln 10 per nat) and shifted to mean 1000
before comparing.  Human-readable lines first; the last line is one JSON object.

Usage::

    python bench/leaderboard.py [--votes 1000000] [--runs 50] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import cpu_model
from ratings import (
    ELO_PER_NAT,
    aggregate_cells,
    bootstrap_ratings,
    fit_bradley_terry,
    rank_intervals,
    run_records,
    simulate_votes,
)


def _centre(r: np.ndarray) -> np.ndarray:
    return r - r.mean() + 1000.0


def run_ours(a, b, o, n, rounds, seed):
    """Aggregate + point fit + bootstrap; returns (seconds per stage, BootstrapResult)."""
    t0 = time.perf_counter()
    cells = aggregate_cells(a, b, o, n)
    t1 = time.perf_counter()
    point = fit_bradley_terry(cells.to_wins())
    t2 = time.perf_counter()
    boot = bootstrap_ratings(cells, rounds=rounds, seed=seed, point=point)
    t3 = time.perf_counter()
    return {"aggregate": t1 - t0, "fit": t2 - t1, "bootstrap": t3 - t2, "total": t3 - t0}, boot


def run_leaderboard_stats(cells, boot):
    """Seconds for the per-run statistics the leaderboard adds after the bootstrap."""
    t0 = time.perf_counter()
    ranks = rank_intervals(boot.samples)
    records = run_records(cells)
    return time.perf_counter() - t0, ranks, records


def run_evalica(a, b, o, n, rounds, seed):
    import evalica
    import pandas as pd

    t0 = time.perf_counter()
    xs, ys = a.tolist(), b.tolist()
    code = np.array([evalica.Winner.X, evalica.Winner.Y, evalica.Winner.Draw, evalica.Winner.Draw])
    winners = [evalica.Winner(w) for w in code[o].tolist()]
    index = pd.Index(range(n))
    prep = time.perf_counter() - t0

    t0 = time.perf_counter()
    # limit raised from the default 100 so the MM iterations reach their tolerance.
    res = evalica.bradley_terry(xs, ys, winners, index=index, tolerance=1e-10, limit=10_000)
    fit = time.perf_counter() - t0
    elo = _centre(ELO_PER_NAT * np.log(res.scores.reindex(index).to_numpy()))

    t0 = time.perf_counter()
    evalica.bootstrap(
        evalica.bradley_terry,
        xs,
        ys,
        winners,
        index=index,
        n_resamples=rounds,
        bootstrap_method="percentile",  # BCa would add a 1M-row jackknife
        random_state=seed,
        tolerance=1e-10,
        limit=10_000,
    )
    boot = time.perf_counter() - t0
    return {"prep": prep, "fit": fit, "bootstrap_measured": boot, "iterations": res.iterations}, elo


def _lr_fit(x, y, w):
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e8, fit_intercept=False, tol=1e-10, max_iter=10_000)
    lr.fit(x, y, sample_weight=w)
    return _centre(ELO_PER_NAT * lr.coef_[0])


def run_logistic(a, b, o, n, cells):
    """Chatbot-Arena style fit: aggregated weighted rows, and the full vote design matrix."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression  # noqa: F401  (import outside timing)

    # Aggregated: one row per (pair, outcome) cell, weight = votes; a tie cell becomes two rows
    # (label 1 and label 0) with half the weight each.
    c = cells.counts
    t0 = time.perf_counter()
    i = np.concatenate([cells.i, cells.i, cells.i, cells.i])
    j = np.concatenate([cells.j, cells.j, cells.j, cells.j])
    y = np.concatenate([np.ones_like(cells.i), np.zeros_like(cells.i)] * 2)
    w = np.concatenate([c[:, 0], c[:, 1], c[:, 2] / 2, c[:, 2] / 2])
    keep = w > 0
    rows = np.arange(keep.sum())
    x = sparse.csr_matrix(
        (
            np.r_[np.ones(rows.size), -np.ones(rows.size)],
            (np.r_[rows, rows], np.r_[i[keep], j[keep]]),
        ),
        shape=(rows.size, n),
    )
    agg = _lr_fit(x, y[keep], w[keep])
    t_agg = time.perf_counter() - t0

    # Full: one row per decisive vote, two half-weighted rows per tie / both_bad.
    t0 = time.perf_counter()
    dec = o < 2
    tie = ~dec
    ra = np.concatenate([a[dec], a[tie], a[tie]])
    rb = np.concatenate([b[dec], b[tie], b[tie]])
    yy = np.concatenate([o[dec] == 0, np.ones(tie.sum(), bool), np.zeros(tie.sum(), bool)])
    ww = np.concatenate([np.ones(dec.sum()), np.full(2 * tie.sum(), 0.5)])
    rows = np.arange(ra.size)
    x = sparse.csr_matrix(
        (np.r_[np.ones(ra.size), -np.ones(ra.size)], (np.r_[rows, rows], np.r_[ra, rb])),
        shape=(ra.size, n),
    )
    full = _lr_fit(x, yy.astype(int), ww)
    t_full = time.perf_counter() - t0
    return {"aggregated": t_agg, "full_rows": t_full, "full_row_count": int(ra.size)}, agg, full


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--votes", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--evalica-rounds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3, help="repeats of our pipeline (median)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-full-lr", action="store_true", help="skip the 1M-row LR fit")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    truth = rng.uniform(800.0, 1200.0, args.runs)
    v = simulate_votes(truth, args.votes, rng, tie_rate=0.1, both_bad_share=0.3)
    a, b, o, n = v.a, v.b, v.outcomes, args.runs
    print(f"{args.votes:,} votes, {n} runs, 10% ties (30% of them both_bad), seed {args.seed}")

    timings = []
    for rep in range(args.repeats):
        t, boot = run_ours(a, b, o, n, args.rounds, seed=args.seed + rep)
        timings.append(t)
    ours = {k: statistics.median(t[k] for t in timings) for k in timings[0]}
    ratings = boot.ratings
    print(
        f"ours: aggregate {ours['aggregate']:.3f}s + BT fit {ours['fit']:.3f}s + "
        f"{args.rounds} bootstrap rounds {ours['bootstrap']:.3f}s = {ours['total']:.3f}s "
        f"(median of {args.repeats}; all: {[round(t['total'], 3) for t in timings]})"
    )
    stats_s, ranks, _ = run_leaderboard_stats(aggregate_cells(a, b, o, n), boot)
    print(
        f"ours: rank intervals over {args.rounds} rounds + per-run records {stats_s:.4f}s "
        f"(mean rank-interval width {np.mean(ranks.high - ranks.low):.2f})"
    )
    print(
        f"ours: max |rating - truth| = {np.abs(ratings - _centre(truth)).max():.2f} Elo, "
        f"mean 95% CI width {np.mean(boot.upper - boot.lower):.2f} Elo, "
        f"fallback rounds {boot.fallback_rounds}, warnings {boot.warnings}"
    )

    ev, ev_elo = run_evalica(a, b, o, n, args.evalica_rounds, args.seed)
    # evalica.bootstrap refits the full data once for the point estimate, then once per round.
    per_round = max(ev["bootstrap_measured"] - ev["fit"], 0.0) / args.evalica_rounds
    ev_boot_full = ev["fit"] + per_round * args.rounds
    print(
        f"evalica: input prep {ev['prep']:.3f}s, BT fit {ev['fit']:.3f}s "
        f"({ev['iterations']} MM iterations), bootstrap {args.evalica_rounds} rounds "
        f"{ev['bootstrap_measured']:.2f}s -> extrapolated linearly to {args.rounds} rounds: "
        f"{ev_boot_full:.1f}s ({per_round:.3f}s/round)"
    )

    lr_t, lr_agg, lr_full = (
        run_logistic(a, b, o, n, aggregate_cells(a, b, o, n))
        if not args.skip_full_lr
        else (None, None, None)
    )
    d_ev = float(np.abs(ratings - ev_elo).max())
    d_lr = float(np.abs(ratings - lr_agg).max()) if lr_agg is not None else None
    d_lr_full = float(np.abs(ratings - lr_full).max()) if lr_full is not None else None
    if lr_t is not None:
        print(
            f"logistic regression (sklearn lbfgs, C=1e8): aggregated rows "
            f"{lr_t['aggregated']:.3f}s, all {lr_t['full_row_count']:,} vote rows "
            f"{lr_t['full_rows']:.2f}s"
        )
    ratio = ev_boot_full / ours["total"]
    print(f"speed-up vs evalica bootstrap ({args.rounds} rounds): {ratio:.0f}x")
    print(
        f"max |Elo diff| of point estimates: vs evalica {d_ev:.2e}, vs LR aggregated {d_lr:.2e}, "
        f"vs LR all rows {d_lr_full:.2e}"
    )
    targets = {
        "ours_under_1s": ours["total"] < 1.0,
        "speedup_at_least_500x": ratio >= 500,
        "within_half_elo_of_evalica": d_ev < 0.5,
        "within_half_elo_of_lr": d_lr is not None and d_lr < 0.5,
    }
    print("targets: " + ", ".join(f"{k}={'met' if ok else 'MISSED'}" for k, ok in targets.items()))
    result = {
        "machine": cpu_model(),
        "cpus": __import__("os").cpu_count(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "votes": args.votes,
        "runs": n,
        "bootstrap_rounds": args.rounds,
        "ours_aggregate_s": round(ours["aggregate"], 4),
        "ours_fit_s": round(ours["fit"], 4),
        "ours_bootstrap_s": round(ours["bootstrap"], 4),
        "ours_total_s": round(ours["total"], 4),
        "ours_total_all_repeats_s": [round(t["total"], 4) for t in timings],
        "ours_rank_intervals_and_records_s": round(stats_s, 4),
        "ours_max_abs_err_vs_truth_elo": round(float(np.abs(ratings - _centre(truth)).max()), 3),
        "ours_mean_ci_width_elo": round(float(np.mean(boot.upper - boot.lower)), 3),
        "evalica_fit_s": round(ev["fit"], 4),
        "evalica_input_prep_s": round(ev["prep"], 4),
        "evalica_bootstrap_rounds_measured": args.evalica_rounds,
        "evalica_bootstrap_measured_s": round(ev["bootstrap_measured"], 3),
        "evalica_bootstrap_extrapolated_s": round(ev_boot_full, 2),
        "evalica_bootstrap_extrapolated": True,
        "speedup_vs_evalica_bootstrap": round(ratio, 1),
        "lr_aggregated_fit_s": None if lr_t is None else round(lr_t["aggregated"], 4),
        "lr_full_rows_fit_s": None if lr_t is None else round(lr_t["full_rows"], 3),
        "max_abs_elo_diff_vs_evalica": d_ev,
        "max_abs_elo_diff_vs_lr_aggregated": d_lr,
        "max_abs_elo_diff_vs_lr_full_rows": d_lr_full,
        "targets": targets,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
