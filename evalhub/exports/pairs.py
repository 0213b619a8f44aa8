"""One row per pair, grouped by PostgreSQL (the fast path of ``selectors.pair_batches``).

The portable path reads every vote and groups them in Python, about 50,000 votes a
second. Here PostgreSQL groups the votes (``GROUP BY`` task, criterion, judge kind, metric)
and sends one row per pair with its counts of a, b and tie (both-bad counted as tie) votes,
the time of its last vote and the first vote's ``metric_calibrated``; the majority and
agreement are computed for a whole batch at once with numpy. Same rows, same values, same
order as the portable path: ``tests/exports/test_paths.py`` compares the two.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

import numpy as np
import pyarrow as pa
from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import BooleanField, Count, Func, Max, Q, QuerySet

from evalhub.campaigns.models import Judgment, Outcome
from evalhub.exports.columns import COLUMNS, Column
from evalhub.exports.prefetch import prefetch
from evalhub.exports.sources import copy_query_batches, copy_statement_batches

PAIR_KEYS = ("task_id", "criterion", "judge_kind", "metric_name")
# Columns that describe one vote, empty on rows aggregated by pair.
PER_JUDGMENT = ("judgment_id", "annotator_id", "a_side", "latency_ms", "client_id")
_OUTCOMES = pa.array([Outcome.A.value, Outcome.B.value, Outcome.TIE.value], pa.string())
_COUNTS = (Column("n_a", pa.int64()), Column("n_b", pa.int64()), Column("n_tie", pa.int64()))
# Per-pair values of columns that differ between a pair's votes (annotation names).
_AGGREGATED = {"created_at": "pair_last_at", "metric_calibrated": "pair_first_calibrated"}


def majorities(a: np.ndarray, b: np.ndarray, tie: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Majority (0 = a, 1 = b, 2 = tie) and agreement of many pairs' vote counts.

    The rule of ``selectors.majority`` for arrays: the most frequent of a, b, tie; a and b
    sharing the top count is a tie; agreement is the majority's share of the votes.
    """
    top = np.maximum(np.maximum(a, b), tie)
    a_wins = (a == top) & (b < top) & (tie < top)
    b_wins = (b == top) & (a < top) & (tie < top)
    outcome = np.where(a_wins, 0, np.where(b_wins, 1, 2))
    agreeing = np.where(a_wins, a, np.where(b_wins, b, tie))
    return outcome, agreeing / (a + b + tie)


def _counts() -> dict:
    """The pair's votes for a, for b, and for neither (tie; both-bad when kept)."""
    return {"n_a": Count("pk", filter=Q(outcome=Outcome.A)),
            "n_b": Count("pk", filter=Q(outcome=Outcome.B)),
            "n_tie": Count("pk", filter=~Q(outcome__in=[Outcome.A, Outcome.B]))}


def _first_calibrated() -> Func:
    """The ``metric_calibrated`` of the pair's first vote (lowest id), as the portable path."""
    return Func(ArrayAgg("metric_calibrated", order_by="pk"), template="(%(expressions)s)[1]",
                output_field=BooleanField())


def pair_copy_batches(qs: QuerySet[Judgment], *, size: int, campaign_id: int,
                      keep_ties: bool, min_agreement: float | None,
                      skip: Collection[str] = ()) -> Iterator[pa.RecordBatch]:
    """Record batches of pairs (``columns.ROW_SCHEMA`` plus ``votes`` and ``agreement``).

    ``qs`` selects the votes; pairs whose majority is a tie are left out unless
    ``keep_ties``, and pairs whose agreement is below ``min_agreement``. Per-vote columns
    are null; ``skip`` as in ``sources.copy_batches``.
    """
    direct = [c for c in COLUMNS if c.lookup is None and c.name != "outcome"
              and c.name not in PER_JUDGMENT and c.name not in skip]
    grouped = [c.path for c in direct if c.name not in _AGGREGATED]
    rows = (qs.order_by().values(*grouped)
            .annotate(pair_last_at=Max("created_at"),
                      pair_first_calibrated=_first_calibrated(), **_counts())
            .order_by(*PAIR_KEYS)
            .values_list(*[_AGGREGATED.get(c.name, c.path) for c in direct],
                         *[c.name for c in _COUNTS]))
    # Grouping by the task's own columns as well changes no group (they depend on the
    # task) but lets the query select them.

    def prepare(batch: pa.RecordBatch) -> pa.RecordBatch:
        a, b, tie = (batch.column(c.name).to_numpy() for c in _COUNTS)
        outcome, agreement = majorities(a, b, tie)
        keep = np.ones(len(outcome), np.bool_)
        if not keep_ties:
            keep &= outcome != 2
        if min_agreement is not None:
            keep &= agreement >= min_agreement
        columns = {c.name: batch.column(c.name) for c in direct}
        columns["outcome"] = _OUTCOMES.take(pa.array(outcome))
        columns["votes"] = pa.array(a + b + tie, pa.int64())
        columns["agreement"] = pa.array(agreement, pa.float64())
        return pa.RecordBatch.from_pydict(columns).filter(pa.array(keep))

    return prefetch(copy_query_batches(rows, [*direct, *_COUNTS], size,
                                       campaign_id=campaign_id, prepare=prepare))


def agreement_copy_batches(qs: QuerySet[Judgment], *, size: int, campaign_id: int,
                           min_agreement: float, skip: Collection[str] = ()
                           ) -> Iterator[pa.RecordBatch]:
    """The votes of pairs whose agreement is at least ``min_agreement``, in id order.

    Batches of ``columns.ROW_SCHEMA`` plus ``votes`` (1) and ``agreement`` (the pair's,
    over the votes ``qs`` selects). PostgreSQL joins every vote to its pair's counts (one
    ``GROUP BY`` of the same votes), so nothing per pair is kept in Python.
    """
    direct = [c for c in COLUMNS if c.lookup is None and c.name not in skip]
    votes = qs.order_by().values_list(*[c.path for c in direct])
    pairs = qs.order_by().values(*PAIR_KEYS).annotate(**_counts()).values_list(
        *PAIR_KEYS, *[c.name for c in _COUNTS])
    # values_list names each column after its path ("id", "task_id", "task__is_gold"...).
    same_pair = " AND ".join(f'v."{key}" = p."{key}"' for key in PAIR_KEYS)  # never NULL
    counts = ", ".join(f'p."{c.name}"' for c in _COUNTS)

    def statement(compose) -> str:
        # MATERIALIZED: the pairs are counted once (a subquery was counted again by every
        # parallel worker, in a plan built on a wrong estimate of the join's rows).
        return (f"WITH p AS MATERIALIZED ({compose(pairs)}) SELECT v.*, {counts} "
                f'FROM ({compose(votes)}) v JOIN p ON {same_pair} ORDER BY v."id"')

    def prepare(batch: pa.RecordBatch) -> pa.RecordBatch:
        a, b, tie = (batch.column(c.name).to_numpy() for c in _COUNTS)
        agreement = majorities(a, b, tie)[1]
        columns = {c.name: batch.column(c.name) for c in direct}
        columns["votes"] = pa.array(np.ones(len(a), np.int64))
        columns["agreement"] = pa.array(agreement, pa.float64())
        return pa.RecordBatch.from_pydict(columns).filter(pa.array(agreement >= min_agreement))

    return prefetch(copy_statement_batches(statement, [*direct, *_COUNTS], size,
                                           campaign_id=campaign_id, prepare=prepare))
