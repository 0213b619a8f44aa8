"""The pair policies' campaign side: read the votes, store the priorities.

A campaign's ``pair_policy`` names one of :data:`ratings.policies.POLICIES` (``balanced``,
``active``, ``uncertainty``, ``top``, ``infogain``; formulas in their docstrings), and
:func:`pair_priorities` calls exactly that pure function through
:func:`ratings.policies.policy_priorities`, the call ``bench/efficiency.py`` simulates. This
module only turns a campaign's judgments into :class:`ratings.policies.PairVotes` and writes
the result onto the tasks, where the serving order puts ``priority`` first
(``serving/leasing.py``). ``balanced`` campaigns store nothing: every priority stays 0 and the
serving order ignores it.
"""

from __future__ import annotations

import numpy as np
from django.db.models import Count

from evalhub.campaigns.models import (
    Campaign,
    ComparisonTask,
    Criterion,
    JudgeKind,
    Judgment,
    Outcome,
    PairPolicy,
)
from evalhub.core.cache import remembered_add
from evalhub.core.queueing import enqueue_on_commit
from ratings import aggregate_cells
from ratings.policies import PairVotes, interval_overlap, policy_priorities

__all__ = [
    "campaign_refresh_priorities",
    "campaign_votes",
    "interval_overlap",
    "pair_priorities",
    "schedule_priority_refresh",
    "uses_priorities",
]

REFRESH_EVERY_SECONDS = 20
#: The outcomes of a pairwise vote (a best-of-K ranking is not a pair's vote).
PAIR_OUTCOMES = (Outcome.A, Outcome.B, Outcome.TIE, Outcome.BOTH_BAD)


def campaign_votes(*, campaign: Campaign) -> tuple[list[int], PairVotes]:
    """The campaign's run ids (sorted: matrix order) and its live human overall votes.

    Gold tasks and retracted votes never count; ``both_bad`` counts as a tie.
    """
    run_ids = sorted(campaign.runs.values_list("id", flat=True))
    index = {run_id: k for k, run_id in enumerate(run_ids)}
    rows = (Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.HUMAN,
                                    criterion=Criterion.OVERALL, retracted_at__isnull=True,
                                    task__is_gold=False, outcome__in=PAIR_OUTCOMES)
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


def uses_priorities(pair_policy: str) -> bool:
    """Whether campaigns with this policy store priorities (every policy but ``balanced``)."""
    return pair_policy != PairPolicy.BALANCED


def pair_priorities(*, campaign: Campaign) -> dict[tuple[int, int], float]:
    """Priority per (run_a_id, run_b_id) from the human overall judgments so far: the
    campaign's ``pair_policy`` applied to them, seeded with the campaign's id."""
    run_ids, votes = campaign_votes(campaign=campaign)
    return policy_priorities(campaign.pair_policy, votes, seed=campaign.pk).by_ids(run_ids)


def campaign_refresh_priorities(*, campaign: Campaign) -> dict[tuple[int, int], float]:
    """Store the current pair priorities on the campaign's tasks (one UPDATE per run pair)."""
    priorities = pair_priorities(campaign=campaign)
    for (run_a, run_b), priority in priorities.items():
        ComparisonTask.objects.filter(campaign=campaign, run_a_id=run_a, run_b_id=run_b
                                      ).update(priority=priority)
    return priorities


def schedule_priority_refresh(*, campaign: Campaign) -> bool:
    """Queue a refresh at most once per REFRESH_EVERY_SECONDS per process (campaigns whose
    policy stores priorities)."""
    if not uses_priorities(campaign.pair_policy):
        return False
    # Asked on every vote: once this process knows a refresh is claimed, it stops asking Redis
    # for a second (a refresh may then start up to that long after the claim expires).
    if not remembered_add(f"campaign-priorities:{campaign.pk}", 1, REFRESH_EVERY_SECONDS,
                          remember_s=1.0):
        return False
    enqueue_on_commit("evalhub.campaigns.refresh_priorities", campaign.pk)
    return True
