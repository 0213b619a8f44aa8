"""Best-of-K votes in a leaderboard: read them as rankings of runs, and fit them together with
the pairwise votes (Plackett-Luce, :mod:`ratings.joint`).

A best-of-K judgment stores canonical positions (``Judgment.ranking``, best first); the task's
:class:`TaskImage` rows say which run sits at each position. A vote becomes the Plackett-Luce
entry "from these K runs, picked these, in this order" (a full ranking's last pick is forced and
dropped). Records, win rates, pair counts and the category breakdown count the pairs a ranking
implies (the rankings exports' rule, ``exports.implied.implied_pairs``): each picked run beat
every run still on offer when it was picked (best of K: K - 1 pairs; a full ranking:
K(K-1)/2), each pair counted as one vote.

Annotator quality applies to rankings as to pairs: ``quality=exclude`` leaves the flagged
annotators' rankings out with their other votes (the filter is on the judgments), and
``quality=weight`` counts each ranking with its annotator's crowd-BT weight, in the
Plackett-Luce fit (pattern counts) and in the implied pairs. The reliability estimate reads
the rankings too (``campaigns/quality/reliability.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from django.db.models import Count, QuerySet

from evalhub.campaigns.models import Judgment, TaskImage
from evalhub.exports.implied import implied_pairs
from ratings import OUTCOME_A, Rankings, rankings_from_pairs
from ratings.joint import JointBootstrap, bootstrap_joint


@dataclass(frozen=True)
class KwiseVotes:
    """A campaign's live best-of-K votes under the leaderboard's filters, counted by pattern.

    ``patterns`` maps (runs shown as indices, sorted; picks as indices, best first) to the
    number of votes (each weighted by its annotator's weight under ``quality=weight``);
    ``a, b, outcomes, counts, categories`` are the implied pairs (module docstring) as
    ``_grouped_votes`` returns pairwise votes.
    """

    patterns: dict[tuple[tuple[int, ...], tuple[int, ...]], float]
    votes: float
    a: npt.NDArray[np.int64]
    b: npt.NDArray[np.int64]
    outcomes: npt.NDArray[np.int8]
    counts: npt.NDArray[np.float64]
    categories: list[str]

    @classmethod
    def merged(cls, parts: list[KwiseVotes | None]) -> KwiseVotes | None:
        """The votes of several campaigns as one (a pooled leaderboard); None when none has
        any. Identical patterns add their counts."""
        present = [p for p in parts if p is not None]
        if len(present) <= 1:
            return present[0] if present else None
        patterns: Counter = Counter()
        for part in present:
            patterns.update(part.patterns)
        return cls(patterns=dict(patterns), votes=sum(p.votes for p in present),
                   a=np.concatenate([p.a for p in present]),
                   b=np.concatenate([p.b for p in present]),
                   outcomes=np.concatenate([p.outcomes for p in present]),
                   counts=np.concatenate([p.counts for p in present]),
                   categories=[c for p in present for c in p.categories])


def kwise_votes(qs: QuerySet[Judgment], index: dict[int, int], *, uncategorised: str,
                weights: dict[int, float] | None = None) -> KwiseVotes | None:
    """The ranked judgments of ``qs`` (two queries: the votes grouped, their tasks' runs), or
    None when there are none. A vote showing a run no longer in the campaign is left out.

    ``weights`` (annotator id -> weight, ``quality=weight``): each vote counts its annotator's
    weight, as a weighted leaderboard counts pairwise votes; an annotator without a positive
    weight is left out. The implied pairs are the rankings exports' (``implied_pairs``).
    """
    group = ("task_id", "ranking", "task__prompt__category") + (
        ("annotator_id",) if weights is not None else ())
    ranked = qs.filter(ranking__isnull=False)
    rows = list(ranked.values(*group).annotate(count=Count("id")).order_by())
    if not rows:
        return None
    runs: dict[int, dict[int, int]] = {}
    # The voted tasks as a subquery, not a set of ids: 100,000 of them would bind more values
    # than one statement may (65,535 on PostgreSQL). It selects the tasks of ``rows``.
    for task_id, position, run_id in TaskImage.objects.filter(
            task_id__in=ranked.values("task_id")).values_list("task_id", "position", "run_id"):
        runs.setdefault(task_id, {})[position] = run_id
    patterns: Counter = Counter()
    implied: Counter = Counter()
    for row in rows:
        weight = 1.0 if weights is None else weights.get(row["annotator_id"], 0.0)
        members = {position: index.get(run) for position, run in
                   runs.get(row["task_id"], {}).items()}
        if weight <= 0.0 or not members or None in members.values() or any(
                p not in members for p in row["ranking"]):
            continue
        count = row["count"] * weight
        category = row["task__prompt__category"] or uncategorised
        for pair in implied_pairs(row["ranking"], len(members)):
            implied[(members[pair.chosen], members[pair.rejected], category)] += count
        # A full ranking's last pick is forced: Plackett-Luce keeps the first K - 1.
        kept = tuple(members[p] for p in row["ranking"][:len(members) - 1])
        patterns[(tuple(sorted(members.values())), kept)] += count
    if not patterns:
        return None
    keys = list(implied)
    return KwiseVotes(
        patterns=dict(patterns), votes=sum(patterns.values()),
        a=np.array([k[0] for k in keys], dtype=np.int64),
        b=np.array([k[1] for k in keys], dtype=np.int64),
        outcomes=np.full(len(keys), OUTCOME_A, dtype=np.int8),
        counts=np.array([implied[k] for k in keys], dtype=np.float64),
        categories=[k[2] for k in keys])


def joint_ratings(*, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64],
                  outcomes: npt.NDArray[np.int8], counts: npt.NDArray[np.float64],
                  kwise: KwiseVotes, n: int, rounds: int, seed: int) -> JointBootstrap:
    """Plackett-Luce over the pairwise votes (``a, b, outcomes, counts`` as grouped) and the
    best-of-K patterns together, with ``rounds`` bootstrap rounds (:mod:`ratings.joint`)."""
    pairs = rankings_from_pairs(a, b, outcomes, n)
    shown = [s for s, _ in kwise.patterns]
    picks = [p for _, p in kwise.patterns]
    ranked = Rankings(n, shown, picks, np.ones(len(picks)),
                      np.arange(len(picks), dtype=np.int64))
    every = pairs + ranked if len(pairs) else ranked
    offset = len(a) if len(pairs) else 0
    pattern_counts = np.concatenate([counts[:offset] if offset else np.zeros(0),
                                     np.array(list(kwise.patterns.values()), dtype=np.float64)])
    return bootstrap_joint(every, pattern_counts, rounds=rounds, seed=seed)
