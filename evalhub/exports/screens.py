"""Best-of-K votes in the pair exports: each ranking as the preference pairs it states.

A best-of-K judgment (outcome ``ranked``) is a sequence of picks among its task's K images
(``TaskImage``, canonical positions 0..K-1 by run id). Which pairs a ranking states, and with
what weight, is ``implied.implied_pairs`` -- the one rule, shared with the rankings export
(docs/exports.md, "Best-of-K rankings"): the pick over every image still on offer, the weights
of one vote summing to 1.

Every implied pair becomes a row of the pair exports' batches (``columns.BATCH_SCHEMA``), so the
DPO, Pick-a-Pic and raw formats write it as they write a pairwise vote: image A is the pair's
lower canonical position (the lower run id, as for pair tasks) and the outcome is ``a`` or
``b``, whichever was chosen; ``screen_k`` is K, ``screen_stage`` the pick that stated the pair
(0: the best pick), ``weight`` its weight; ``a_side`` is null (the K images are shown in a
grid, not left and right). ``implied_pairs`` runs once per distinct ranking of a batch (K
choices for best of K, at most K! for rank-all) and numpy spreads its pairs over the votes.

The votes come from the pair exports' two sources (COPY on PostgreSQL, the ORM elsewhere) with
the ranking as text, and the task's K images from one read of the campaign's ``TaskImage``
rows, so memory stays at a batch plus the campaign's task members, and no vote's pairs are
built in Python one by one.

By pair (``aggregate=pair``) the implied pairs of a (task, image pair, criterion, judge) are
one row with the majority rule of the pairwise votes (``pairs.majorities``): ``votes`` is the
number of rankings that state the pair, ``agreement`` the majority's share, ``weight`` the mean
weight of the implied pairs. With ``min_agreement`` by judgment, each implied pair carries that
agreement. Both read the votes in task order and group one task's votes at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from evalhub.campaigns.models import Judgment, Outcome, TaskImage
from evalhub.exports.columns import BATCH_SCHEMA, COLUMNS, Column
from evalhub.exports.implied import implied_pairs
from evalhub.exports.pairs import PER_JUDGMENT, majorities
from evalhub.exports.prefetch import prefetch
from evalhub.exports.sources import (
    copy_available,
    copy_query_batches,
    join_lookups,
    lookup_tables,
    orm_query_batches,
)

RANKING = Column("ranking", pa.string(), "ranking_text")  # the JSON list, as text
# What makes an implied pair one pair across votes (by pair, and for its agreement).
PAIR = ("task_id", "criterion", "judge_kind", "metric_name", "image_a_id", "image_b_id")
_SIDES = pa.array([Outcome.A.value, Outcome.B.value, Outcome.TIE.value], pa.string())


@dataclass(frozen=True)
class Members:
    """The images of a campaign's best-of-K tasks: task ``tasks[i]`` has ``k[i]`` images,
    ``image[start[i] + p]`` (of run ``run[start[i] + p]``) at canonical position ``p``."""

    tasks: np.ndarray
    start: np.ndarray
    k: np.ndarray
    image: np.ndarray
    run: np.ndarray

    def where(self, task_ids: np.ndarray) -> np.ndarray:
        """Index of each task id in ``tasks`` (every one must be a best-of-K task)."""
        index = np.minimum(np.searchsorted(self.tasks, task_ids), max(len(self.tasks) - 1, 0))
        if len(task_ids) and (not len(self.tasks)
                              or not np.array_equal(self.tasks[index], task_ids)):
            raise RuntimeError("A ranked judgment's task has no best-of-K images.")
        return index


def screen_members(*, campaign_id: int, chunk: int = 50_000) -> Members:
    """Every best-of-K task's images of the campaign, read once into numpy arrays ``chunk``
    rows at a time (a million members take 24 MB, not a million Python tuples)."""
    rows = (TaskImage.objects.filter(task__campaign_id=campaign_id)
            .order_by("task_id", "position").values_list("task_id", "image_id", "run_id")
            .iterator(chunk_size=chunk))
    parts = [np.array(part, np.int64).reshape(-1, 3) for part in iter(
        lambda: list(islice(rows, chunk)), [])]
    task, image, run = np.concatenate(parts or [np.zeros((0, 3), np.int64)]).T
    tasks, start, k = np.unique(task, return_index=True, return_counts=True)
    return Members(tasks, start.astype(np.int64), k.astype(np.int64),
                   np.ascontiguousarray(image), np.ascontiguousarray(run))


def expand(batch: pa.RecordBatch, members: Members) -> pa.RecordBatch:
    """The implied pairs of a batch of ranked votes (direct columns and ``ranking``), as rows
    of the direct columns plus ``votes`` (1), ``agreement`` (null), ``screen_k``,
    ``screen_stage`` and ``weight``: see the module docstring."""
    n = batch.num_rows
    where = members.where(batch.column("task_id").to_numpy())
    k = members.k[where]
    rankings = batch.column("ranking").dictionary_encode()
    texts = rankings.dictionary.to_pylist()
    width = int(k.max(initial=0)) + 1
    patterns, code = np.unique(rankings.indices.to_numpy() * width + k, return_inverse=True)
    stated = [implied_pairs(json.loads(texts[p // width]), int(p % width)) for p in patterns]
    sizes = np.array([len(pairs) for pairs in stated], np.int64)
    flat = [pair for pairs in stated for pair in pairs]
    chosen = np.array([p.chosen for p in flat], np.int64)
    rejected = np.array([p.rejected for p in flat], np.int64)
    stage = np.array([p.stage for p in flat], np.int64)
    weight = np.array([p.weight for p in flat], np.float64)
    # Row r of the result is pair ``within[r]`` of vote ``vote[r]``'s pattern.
    counts = sizes[code] if n else np.zeros(0, np.int64)
    vote = np.repeat(np.arange(n), counts)
    within = np.arange(len(vote)) - np.repeat(np.cumsum(counts) - counts, counts)
    pair = (np.cumsum(sizes) - sizes)[code][vote] + within
    c, r = chosen[pair], rejected[pair]
    low, high = np.minimum(c, r), np.maximum(c, r)
    first = members.start[where][vote]
    taken = batch.take(pa.array(vote))
    m = len(vote)
    columns = {name: taken.column(name) for name in batch.schema.names if name != "ranking"}
    columns.update({
        "image_a_id": pa.array(members.image[first + low]),
        "image_b_id": pa.array(members.image[first + high]),
        "run_a_id": pa.array(members.run[first + low]),
        "run_b_id": pa.array(members.run[first + high]),
        "outcome": _SIDES.take(pa.array((c != low).astype(np.int64))),
        "a_side": pa.nulls(m, pa.string()),
        "votes": pa.array(np.ones(m, np.int64)), "agreement": pa.nulls(m, pa.float64()),
        "screen_k": pa.array(k[vote]), "screen_stage": pa.array(stage[pair]),
        "weight": pa.array(weight[pair]),
    })
    return pa.RecordBatch.from_pydict(columns)


def _source(qs: QuerySet[Judgment], order: tuple[str, ...], size: int, *, campaign_id: int,
            skip: Collection[str]) -> Iterator[pa.RecordBatch]:
    """Implied-pair batches of ``BATCH_SCHEMA`` from the fastest source, ``size`` votes each."""
    members = screen_members(campaign_id=campaign_id)
    direct = [c for c in COLUMNS if c.lookup is None and c.name not in skip]
    rows = (qs.annotate(ranking_text=Cast("ranking", TextField())).order_by(*order)
            .values_list(*[c.path for c in (*direct, RANKING)]))

    def prepare(batch: pa.RecordBatch) -> pa.RecordBatch:
        return expand(batch, members)

    if copy_available():
        batches = prefetch(copy_query_batches(rows, [*direct, RANKING], size,
                                              campaign_id=campaign_id, prepare=prepare))
    else:
        tables = lookup_tables(campaign_id)
        batches = (join_lookups(prepare(batch), tables)
                   for batch in orm_query_batches(rows, [*direct, RANKING], size))
    for batch in batches:
        if batch.num_rows:
            yield pa.RecordBatch.from_arrays(batch.columns, schema=BATCH_SCHEMA)


def _whole_tasks(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    """The batches (in task order) regrouped so that no task's rows are split: each table
    ends where a task ends. Memory: a batch plus the rows of one task."""
    held: pa.Table | None = None
    for batch in batches:
        table = pa.Table.from_batches([batch])
        if held is not None:
            table = pa.concat_tables([held, table])
        tasks = table.column("task_id")
        cut = pc.index(tasks, tasks[-1]).as_py()  # the last task's first row
        held = table.slice(cut)
        if cut:
            yield table.slice(0, cut)
    if held is not None and held.num_rows:
        yield held


def _pairs(table: pa.Table, *aggregations: tuple[str, str]
           ) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The table's implied pairs grouped by ``PAIR`` with ``aggregations`` of its columns (and
    of ``row``, each row's index), and per group the votes for image A and for image B."""
    counted = table.append_column("row", pa.array(np.arange(table.num_rows))).append_column(
        "for_a", pc.equal(table.column("outcome"), Outcome.A.value).cast(pa.int64()))
    groups = counted.group_by(list(PAIR), use_threads=False).aggregate(
        [*aggregations, ("for_a", "sum"), ("row", "count")])
    for_a = groups.column("for_a_sum").to_numpy()
    return groups, for_a, groups.column("row_count").to_numpy() - for_a


def _by_pair(table: pa.Table, *, keep_ties: bool, min_agreement: float | None
             ) -> pa.RecordBatch:
    """One row per implied pair (``PAIR``) with the majority of the votes that state it."""
    groups, for_a, for_b = _pairs(table, ("row", "min"), ("weight", "mean"),
                                  ("created_at", "max"))
    outcome, agreement = majorities(for_a, for_b, np.zeros_like(for_a))
    first = groups.column("row_min").to_numpy()  # the vote with the lowest id (task order)
    keep = np.ones(len(first), np.bool_) if keep_ties else outcome != 2
    if min_agreement is not None:
        keep &= agreement >= min_agreement
    order = np.argsort(first, kind="stable")
    order = order[keep[order]]  # in the order of the votes
    index = pa.array(order)
    taken = table.take(pa.array(first[order]))
    columns = {name: taken.column(name).combine_chunks() for name in BATCH_SCHEMA.names}
    m = len(order)
    for name in PER_JUDGMENT:
        columns[name] = pa.nulls(m, BATCH_SCHEMA.field(name).type)
    columns.update({
        "outcome": _SIDES.take(pa.array(outcome[order])),
        "created_at": groups.column("created_at_max").take(index).combine_chunks(),
        "votes": pa.array((for_a + for_b)[order]),
        "agreement": pa.array(agreement[order], pa.float64()),
        "screen_stage": pa.nulls(m, pa.int64()),
        "weight": groups.column("weight_mean").take(index).combine_chunks(),
    })
    return pa.RecordBatch.from_arrays([columns[name] for name in BATCH_SCHEMA.names],
                                      schema=BATCH_SCHEMA)


def _with_agreement(table: pa.Table, min_agreement: float) -> pa.RecordBatch:
    """The implied pairs whose pair's agreement is at least ``min_agreement``, with it."""
    groups, for_a, for_b = _pairs(table, ("row", "list"))
    agreement = majorities(for_a, for_b, np.zeros_like(for_a))[1]
    rows = groups.column("row_list")
    per_row = np.empty(table.num_rows, np.float64)
    per_row[pc.list_flatten(rows).to_numpy()] = np.repeat(
        agreement, pc.list_value_length(rows).to_numpy())
    keep = per_row >= min_agreement
    table = table.set_column(BATCH_SCHEMA.get_field_index("agreement"), "agreement",
                             pa.array(per_row, pa.float64()))
    return pa.RecordBatch.from_arrays(
        [column.combine_chunks() for column in table.filter(pa.array(keep)).columns],
        schema=BATCH_SCHEMA)


def pairs_per_vote(*, k: int, rank_all: bool) -> int:
    """How many pairs one vote of a best-of-K campaign states (``implied_pairs``' count):
    K - 1 for a pick, K(K-1)/2 for a full ranking."""
    return len(implied_pairs(list(range(k)) if rank_all else [0], k))


def screen_batches(qs: QuerySet[Judgment], *, campaign_id: int, size: int, per_vote: int,
                   aggregate_pairs: bool, keep_ties: bool, min_agreement: float | None,
                   pair_order: tuple[str, ...], skip: Collection[str] = ()
                   ) -> Iterator[pa.RecordBatch]:
    """The implied pairs of the ranked votes ``qs`` selects, as ``BATCH_SCHEMA`` batches.

    A batch reads ``size / per_vote`` votes (``per_vote``: ``pairs_per_vote``), so it holds
    about ``size`` rows, as a pairwise batch does: memory does not grow with K. By judgment,
    in vote id order; with ``min_agreement``, or by pair (``aggregate_pairs``), in
    ``pair_order`` (task first), a task's votes at a time.
    """
    size = max(size // max(per_vote, 1), 1)
    if not aggregate_pairs and min_agreement is None:
        yield from _source(qs, ("id",), size, campaign_id=campaign_id, skip=skip)
        return
    grouped: Callable[[pa.Table], pa.RecordBatch]
    if aggregate_pairs:
        def grouped(table: pa.Table) -> pa.RecordBatch:
            return _by_pair(table, keep_ties=keep_ties, min_agreement=min_agreement)
    else:
        def grouped(table: pa.Table) -> pa.RecordBatch:
            return _with_agreement(table, min_agreement)  # type: ignore[arg-type]
    for table in _whole_tasks(_source(qs, pair_order, size, campaign_id=campaign_id,
                                      skip=skip)):
        batch = grouped(table)
        if batch.num_rows:
            yield batch
