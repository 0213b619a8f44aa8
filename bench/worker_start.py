"""How long a Celery worker takes to start: EvalHub's worker beside the same worker running
Django's system checks at start (Celery's Django fix-up does unless ``CELERY_SKIP_CHECKS`` is
set; ``evalhub/config/celery.py`` sets it).

Each start is ``celery -A evalhub worker`` (one process, ``default`` queue, no gossip or
mingle) timed from the launch to its "ready." line, then stopped. The two kinds alternate,
``--rounds`` times each, on a scratch Redis database (``--broker``, default db 13) that no
other worker consumes; the figure is the median. No issue states a target for worker starts:
``targets`` is empty; the figures back docs/benchmarks.md. Human-readable lines first; the
last line is one JSON object.

Usage::

    python bench/worker_start.py [--rounds 5] [--broker redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import run_context

REPO = Path(__file__).resolve().parent.parent


def start_seconds(*, broker: str, checks: bool) -> float:
    """Seconds from launching a worker to its "ready." line. ``checks``: run Django's system
    checks at start (``CELERY_SKIP_CHECKS`` empty, which Celery reads as unset)."""
    env = dict(os.environ, CELERY_BROKER_URL=broker,
               CELERY_SKIP_CHECKS="" if checks else "1")
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "evalhub", "worker", "-Q", "default",
         "--concurrency", "1", "-n", "bench-start@%h", "--without-gossip", "--without-mingle",
         "--loglevel", "INFO"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in process.stdout:
            if " ready." in line:
                return time.perf_counter() - start
        raise RuntimeError(f"the worker exited with {process.wait()} before it was ready")
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    load_before = os.getloadavg()

    times: dict[str, list[float]] = {"ours": [], "with_checks": []}
    for _ in range(args.rounds):
        times["ours"].append(start_seconds(broker=args.broker, checks=False))
        times["with_checks"].append(start_seconds(broker=args.broker, checks=True))
    median = {kind: round(statistics.median(values), 3) for kind, values in times.items()}
    ratio = round(median["with_checks"] / median["ours"], 2)
    print(f"worker start, median of {args.rounds}: EvalHub {median['ours']} s, with Django's "
          f"checks {median['with_checks']} s ({ratio}x)")
    print(json.dumps({"bench": "worker_start", "rounds": args.rounds, "median_s": median,
                      "runs_s": {k: [round(v, 3) for v in vs] for k, vs in times.items()},
                      "ratio_checks_over_ours": ratio, "targets": {},
                      **run_context(load_before)}))


if __name__ == "__main__":
    main()
