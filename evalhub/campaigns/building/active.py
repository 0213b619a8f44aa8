"""The active pair policy's campaign side: read the votes, store the priorities.

The policy itself is the pure function :func:`ratings.policies.active_priorities`

    priority_ij = overlap_ij / (1 + n_ij)

(``overlap_ij``: how much the two runs' bootstrap Elo intervals overlap, 1 when one contains the
other, 0 when the pair's order is settled; ``n_ij``: votes the pair already has; formula and
details in its docstring). It is the code ``bench/efficiency.py`` simulates: this module only
turns a campaign's judgments into :class:`ratings.policies.PairVotes` and writes the result onto
the tasks, where the serving order puts ``priority`` first.
"""

from __future__ import annotations

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
from ratings import aggregate_cells
from ratings.policies import PairVotes, active_priorities, interval_overlap

__all__ = [
    "campaign_refresh_priorities",
    "campaign_votes",
    "interval_overlap",
    "pair_priorities",
    "schedule_priority_refresh",
]

REFRESH_EVERY_SECONDS = 20


def campaign_votes(*, campaign: Campaign) -> tuple[list[int], PairVotes]:
    """The campaign's run ids (sorted: matrix order) and its live human overall votes.

    Gold tasks and retracted votes never count; ``both_bad`` counts as a tie.
    """
    run_ids = sorted(campaign.runs.values_list("id", flat=True))
    index = {run_id: k for k, run_id in enumerate(run_ids)}
    rows = (Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.HUMAN,
                                    criterion=Criterion.OVERALL, retracted_at__isnull=True,
                                    task__is_gold=False)
            .values_list("task__run_a_id", "task__run_b_id", "outcome")
            .annotate(n=Count("id")))
    a_idx, b_idx, outcomes, weights = [], [], [], []
    for run_a, run_b, outcome, n in rows:
        a_idx.append(index[run_a])
        b_idx.append(index[run_b])
        outcomes.append(outcome)
        weights.append(n)
    cells = aggregate_cells(np.array(a_idx, dtype=np.int64), np.array(b_idx, dtype=np.int64),
                            outcomes, len(run_ids), weights=np.array(weights, dtype=float))
    return run_ids, PairVotes.from_cells(cells)


def pair_priorities(*, campaign: Campaign) -> dict[tuple[int, int], float]:
    """Priority per (run_a_id, run_b_id) from the human overall judgments so far."""
    run_ids, votes = campaign_votes(campaign=campaign)
    return active_priorities(votes, seed=campaign.pk).by_ids(run_ids)


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
