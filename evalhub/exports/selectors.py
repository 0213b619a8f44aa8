"""Which judgments an export reads, and their batches (by judgment or by pair).

The rows come from ``sources.row_batches`` as Arrow record batches (never model instances);
this module picks them (filters, gold accuracy, excluded annotators), adds ``votes`` and
``agreement``, and aggregates by pair. Run, checkpoint and model names come from a small dict
built once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.db.models import Q, QuerySet

from evalhub.campaigns.models import (
    Campaign,
    ComparisonTask,
    JudgeKind,
    Judgment,
    Outcome,
    TaskKind,
)
from evalhub.campaigns.quality.annotators import (
    excluded_annotator_ids,
    gold_accuracy_by_annotator,
)
from evalhub.exports.columns import BATCH_SCHEMA, NAMES, RAW_ONLY, ROW_SCHEMA
from evalhub.exports.options import AGGREGATE_PAIR, RAW_FORMATS, ExportOptions
from evalhub.exports.pairs import PER_JUDGMENT, agreement_copy_batches, pair_copy_batches
from evalhub.exports.screens import pairs_per_vote, screen_batches
from evalhub.exports.sources import copy_available, row_batches
from evalhub.runs.models import GenerationRun

PAIR_ORDER = ("task_id", "criterion", "judge_kind", "metric_name", "id")

Batch = pa.RecordBatch  # columns of ``columns.BATCH_SCHEMA``


@dataclass(frozen=True)
class RunInfo:
    name: str
    model: str  # "<model name>/<checkpoint name>"


def run_infos(*, campaign: Campaign) -> dict[int, RunInfo]:
    """Run id -> run name and "model/checkpoint" for every run the campaign compares."""
    rows = GenerationRun.objects.filter(
        Q(campaigns=campaign) | Q(project_id=campaign.project_id)
    ).distinct().values_list("id", "name", "checkpoint__model__name", "checkpoint__name")
    return {pk: RunInfo(name, f"{model}/{ckpt}") for pk, name, model, ckpt in rows}


def campaign_categories(*, campaign: Campaign) -> list[str]:
    """The prompt categories of the campaign's tasks, sorted (what its exports can filter)."""
    return list(ComparisonTask.objects.filter(campaign=campaign)
                .exclude(prompt__category="").order_by("prompt__category")
                .values_list("prompt__category", flat=True).distinct())


def export_queryset(*, campaign: Campaign, options: ExportOptions, ranked: bool | None = None
                    ) -> QuerySet[Judgment]:
    """Every judgment the options select, before pair aggregation and agreement filters:
    pairwise votes, or with ``ranked`` best-of-K votes (their pairs: ``screens``); by default
    the kind the campaign holds (a best-of-K campaign's votes are ranked).

    Undone (retracted) votes never appear. Excluded annotators are left out unless
    ``include_excluded``; with ``min_gold_accuracy`` only annotators with at least that gold
    accuracy (and at least one gold vote) remain. Metric judgments are never filtered by
    annotator rules.
    """
    qs = Judgment.objects.filter(campaign=campaign, retracted_at__isnull=True)
    if not options.include_metric_judges:
        qs = qs.filter(judge_kind=JudgeKind.HUMAN)
    if not options.include_gold:
        qs = qs.filter(task__is_gold=False)
    if options.criteria:
        qs = qs.filter(criterion__in=list(options.criteria))
    if options.prompt_category:
        qs = qs.filter(task__prompt__category=options.prompt_category)
    if options.since:
        qs = qs.filter(created_at__gte=options.since)
    if options.until:
        qs = qs.filter(created_at__lt=options.until)
    outcomes = [Outcome.A, Outcome.B]
    if options.keep_ties or options.aggregate == AGGREGATE_PAIR:
        outcomes.append(Outcome.TIE)  # by pair, ties are filtered on the majority
    if options.keep_both_bad:
        outcomes.append(Outcome.BOTH_BAD)
    if ranked is None:
        ranked = campaign.task_kind == TaskKind.BEST_OF_K
    qs = qs.filter(outcome__in=[Outcome.RANKED] if ranked else outcomes)
    dropped = set() if options.include_excluded else excluded_annotator_ids(campaign=campaign)
    if options.min_gold_accuracy is not None:
        gold = gold_accuracy_by_annotator(campaign=campaign)
        keep = [aid for aid, stats in gold.items()
                if stats.accuracy is not None and stats.accuracy >= options.min_gold_accuracy
                and aid not in dropped]
        qs = qs.filter(Q(judge_kind=JudgeKind.METRIC) | Q(annotator_id__in=keep))
    elif dropped:
        qs = qs.exclude(Q(judge_kind=JudgeKind.HUMAN) & Q(annotator_id__in=dropped))
    return qs


def majority(a: int, b: int, tie: int) -> tuple[str, float]:
    """Majority outcome and agreement ratio of one pair's votes.

    Both-bad votes count as ties (``tie`` holds both). Same rule as
    ``ratings.majority_outcomes``: the most frequent of a, b, tie; a and b sharing the top
    count is a tie. The agreement ratio is the share of votes equal to the majority.
    """
    n = a + b + tie
    top = max(a, b, tie)
    if a == top and b < top and tie < top:
        return Outcome.A, a / n
    if b == top and a < top and tie < top:
        return Outcome.B, b / n
    return Outcome.TIE, tie / n


def _pair_agreements(qs: QuerySet[Judgment], chunk: int) -> dict[tuple, tuple[int, float]]:
    """(task, criterion, judge kind, metric) -> (votes, agreement), from a narrow pre-pass."""
    rows = qs.order_by(*PAIR_ORDER).values_list(
        "task_id", "criterion", "judge_kind", "metric_name", "outcome").iterator(chunk_size=chunk)
    result: dict[tuple, tuple[int, float]] = {}
    key = None
    counts = [0, 0, 0]
    for task_id, criterion, kind, metric, outcome in rows:
        this = (task_id, criterion, kind, metric)
        if this != key:
            if key is not None:
                result[key] = (sum(counts), majority(*counts)[1])
            key, counts = this, [0, 0, 0]
        counts[0 if outcome == Outcome.A else 1 if outcome == Outcome.B else 2] += 1
    if key is not None:
        result[key] = (sum(counts), majority(*counts)[1])
    return result


def _unread(options: ExportOptions) -> tuple[str, ...]:
    """Columns the export's format never writes (they may be null in its batches)."""
    return () if options.format in RAW_FORMATS else RAW_ONLY


def _with_extra(batch: pa.RecordBatch, votes: pa.Array, agreement: pa.Array) -> pa.RecordBatch:
    """A batch of pairwise votes (``COLUMNS``) with ``votes`` and ``agreement``, and the
    ``columns.SCREEN`` of a pairwise vote: no screen, weight 1."""
    n = batch.num_rows
    screen = [pa.nulls(n, pa.int64()), pa.nulls(n, pa.int64()),
              pa.array(np.ones(n, np.float64))]
    return pa.RecordBatch.from_arrays([*batch.columns, votes, agreement, *screen],
                                      schema=BATCH_SCHEMA)


def judgment_batches(*, campaign: Campaign, options: ExportOptions) -> Iterator[Batch]:
    """Record batches of at most ``options.batch_size`` rows, in judgment id order.

    Every batch has the columns of ``columns.BATCH_SCHEMA``: those of ``COLUMNS`` plus
    ``votes``, ``agreement`` and the ``columns.SCREEN`` columns. By judgment, ``votes`` is 1
    and ``agreement`` is the pair's agreement when ``min_agreement`` is set (else null). By
    pair, see ``pair_batches``. A best-of-K campaign's votes are the pairs they state
    (``screens.screen_batches``): it has no pairwise vote (its tasks are K-sets, and metric
    judges refuse it), as a pair campaign has no ranked vote.
    """
    if campaign.task_kind != TaskKind.BEST_OF_K:
        yield from _pairwise_batches(campaign=campaign, options=options)
    else:
        yield from screen_batches(
            export_queryset(campaign=campaign, options=options, ranked=True),
            campaign_id=campaign.pk, size=options.batch_size,
            per_vote=pairs_per_vote(k=campaign.k, rank_all=campaign.rank_all),
            aggregate_pairs=options.aggregate == AGGREGATE_PAIR, keep_ties=options.keep_ties,
            min_agreement=options.min_agreement, pair_order=PAIR_ORDER,
            skip=_unread(options))


def _pairwise_batches(*, campaign: Campaign, options: ExportOptions) -> Iterator[Batch]:
    """``judgment_batches`` of the pairwise votes."""
    if options.aggregate == AGGREGATE_PAIR:
        yield from pair_batches(campaign=campaign, options=options)
        return
    qs = export_queryset(campaign=campaign, options=options)
    size = options.batch_size
    if options.min_agreement is not None and copy_available():
        for batch in agreement_copy_batches(qs, size=size, campaign_id=campaign.pk,
                                            min_agreement=options.min_agreement,
                                            skip=_unread(options)):
            yield _with_extra(batch.drop_columns(["votes", "agreement"]),
                              batch.column("votes"), batch.column("agreement"))
        return
    agreements = None
    if options.min_agreement is not None:
        agreements = _pair_agreements(qs, size)
    for batch in row_batches(qs, ("id",), size, campaign_id=campaign.pk,
                             skip=_unread(options)):
        n = batch.num_rows
        if agreements is not None:
            keys = zip(*(batch.column(name).to_pylist() for name in
                         ("task_id", "criterion", "judge_kind", "metric_name")), strict=True)
            found = pa.array([agreements[key][1] for key in keys], pa.float64())
            keep = pc.greater_equal(found, options.min_agreement)
            batch, agreement = batch.filter(keep), found.filter(keep)
            n = batch.num_rows
        else:
            agreement = pa.nulls(n, pa.float64())
        if n:
            yield _with_extra(batch, pa.repeat(1, n).cast(pa.int64()), agreement)


def pair_batches(*, campaign: Campaign, options: ExportOptions) -> Iterator[Batch]:
    """One row per (task, criterion, judge) with the majority outcome of its votes.

    Humans are one judge; each metric is its own judge. ``outcome`` is the majority,
    ``votes`` the number of votes, ``agreement`` the share of votes equal to the majority,
    ``created_at`` the time of the last vote; per-vote columns (judgment id, annotator, side,
    latency, client id) are null. Pairs whose majority is a tie are dropped unless ties are
    kept; pairs below ``min_agreement`` are dropped.

    On PostgreSQL the database groups the votes (``pairs.pair_copy_batches``); elsewhere
    they are grouped here, row by row.
    """
    qs = export_queryset(campaign=campaign, options=options)
    if copy_available():
        for batch in pair_copy_batches(qs, size=options.batch_size, campaign_id=campaign.pk,
                                       keep_ties=options.keep_ties,
                                       min_agreement=options.min_agreement,
                                       skip=_unread(options)):
            yield _with_extra(batch.drop_columns(["votes", "agreement"]),
                              batch.column("votes"), batch.column("agreement"))
        return
    index = {name: i for i, name in enumerate(NAMES)}
    i_key = [index[n] for n in ("task_id", "criterion", "judge_kind", "metric_name")]
    i_outcome, i_created = index["outcome"], index["created_at"]
    blank = {index[name] for name in PER_JUDGMENT}
    out: list[tuple] = []

    def rows() -> Iterator[tuple]:
        for batch in row_batches(qs, PAIR_ORDER, options.batch_size, campaign_id=campaign.pk,
                                 skip=_unread(options)):
            yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)

    def emit(first: tuple, counts: list[int], last_at) -> None:
        outcome, agreement = majority(*counts)
        if outcome == Outcome.TIE and not options.keep_ties:
            return
        if options.min_agreement is not None and agreement < options.min_agreement:
            return
        row = [None if i in blank else value for i, value in enumerate(first)]
        row[i_outcome] = outcome
        row[i_created] = last_at
        out.append((*row, sum(counts), agreement))

    def flush() -> Batch:
        *columns, votes, agreement = zip(*out, strict=True)
        rows = pa.RecordBatch.from_arrays(
            [pa.array(list(values), field.type)
             for values, field in zip(columns, ROW_SCHEMA, strict=True)], schema=ROW_SCHEMA)
        return _with_extra(rows, pa.array(votes, pa.int64()), pa.array(agreement, pa.float64()))

    key = first = last_at = None
    counts = [0, 0, 0]
    for row in rows():
        this = tuple(row[i] for i in i_key)
        if this != key:
            if key is not None:
                emit(first, counts, last_at)
                if len(out) >= options.batch_size:
                    yield flush()
                    out = []
            key, first, counts, last_at = this, row, [0, 0, 0], row[i_created]
        outcome = row[i_outcome]
        counts[0 if outcome == Outcome.A else 1 if outcome == Outcome.B else 2] += 1
        last_at = max(last_at, row[i_created])
    if key is not None:
        emit(first, counts, last_at)
    if out:
        yield flush()


def annotator_usernames(*, campaign: Campaign) -> dict[int, str]:
    from django.contrib.auth import get_user_model

    ids = (Judgment.objects.filter(campaign=campaign, annotator_id__isnull=False)
           .values("annotator_id").distinct())
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
