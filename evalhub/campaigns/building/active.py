"""The active pair policy: serve the pairs whose order is least certain.

After votes arrive, each run pair (i, j) gets the priority

    priority_ij = overlap_ij / (1 + n_ij)

where ``overlap_ij`` is the length of the intersection of the two runs' bootstrap confidence
intervals on the Elo scale divided by the shorter interval (1 when one interval contains the
other, 0 when they are disjoint: that pair's order is settled) and ``n_ij`` is the number of
votes the pair already has. Runs with no votes yet get the highest priority (1 / (1 + n_ij)),
so the campaign first connects the comparison graph, then spends votes where intervals
still overlap, which narrows confidence intervals with the fewest votes.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.core.cache import cache
from django.db.models import Count

from evalhub.campaigns.models import (
    Campaign,
    ComparisonTask,
    Criterion,
    JudgeKind,
    Judgment,
    PairPolicy,
)
from evalhub.core.queueing import enqueue_on_commit
from ratings import aggregate_cells, bootstrap_ratings

PRIORITY_BOOTSTRAP_ROUNDS = 200
REFRESH_EVERY_SECONDS = 20


def interval_overlap(lower: np.ndarray, upper: np.ndarray, i: int, j: int) -> float:
    """|[l_i,u_i] ∩ [l_j,u_j]| / min(u_i - l_i, u_j - l_j), in [0, 1]."""
    shared = min(upper[i], upper[j]) - max(lower[i], lower[j])
    shortest = min(upper[i] - lower[i], upper[j] - lower[j])
    if shortest <= 0:
        return 1.0 if shared >= 0 else 0.0
    return float(np.clip(shared / shortest, 0.0, 1.0))


def pair_priorities(*, campaign: Campaign) -> dict[tuple[int, int], float]:
    """Priority per (run_a_id, run_b_id) from the human overall judgments so far."""
    run_ids = sorted(campaign.runs.values_list("id", flat=True))
    index = {run_id: k for k, run_id in enumerate(run_ids)}
    rows = (Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.HUMAN,
                                    criterion=Criterion.OVERALL, retracted_at__isnull=True,
                                    task__is_gold=False)
            .values_list("task__run_a_id", "task__run_b_id", "outcome")
            .annotate(n=Count("id")))
    votes: dict[tuple[int, int], int] = defaultdict(int)
    a_idx, b_idx, outcomes, weights = [], [], [], []
    for run_a, run_b, outcome, n in rows:
        votes[(run_a, run_b)] += n
        a_idx.append(index[run_a])
        b_idx.append(index[run_b])
        outcomes.append(outcome)
        weights.append(n)
    pairs = [(a, b) for k, a in enumerate(run_ids) for b in run_ids[k + 1:]]
    if not a_idx:
        return {pair: 1.0 for pair in pairs}
    cells = aggregate_cells(np.array(a_idx), np.array(b_idx), outcomes, len(run_ids),
                            weights=np.array(weights, dtype=float))
    boot = bootstrap_ratings(cells, rounds=PRIORITY_BOOTSTRAP_ROUNDS, seed=campaign.pk,
                             workers=1)
    return {
        (a, b): interval_overlap(boot.lower, boot.upper, index[a], index[b]) / (1 + votes[(a, b)])
        for a, b in pairs
    }


def campaign_refresh_priorities(*, campaign: Campaign) -> dict[tuple[int, int], float]:
    """Store the current pair priorities on the campaign's tasks (one UPDATE per run pair)."""
    priorities = pair_priorities(campaign=campaign)
    for (run_a, run_b), priority in priorities.items():
        ComparisonTask.objects.filter(campaign=campaign, run_a_id=run_a, run_b_id=run_b
                                      ).update(priority=priority)
    return priorities


def schedule_priority_refresh(*, campaign: Campaign) -> bool:
    """Queue a refresh at most once per REFRESH_EVERY_SECONDS per process (active campaigns)."""
    if campaign.pair_policy != PairPolicy.ACTIVE:
        return False
    if not cache.add(f"campaign-priorities:{campaign.pk}", 1, timeout=REFRESH_EVERY_SECONDS):
        return False
    enqueue_on_commit("evalhub.campaigns.refresh_priorities", campaign.pk)
    return True
