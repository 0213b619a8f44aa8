"""The judgments an export reads, streamed from the database in column batches.

Rows never exist as model instances: ``values_list(...).iterator(chunk_size=...)`` (a
server-side cursor on PostgreSQL) yields plain tuples, which are transposed per batch into
one list per column. Run, checkpoint and model names come from a small dict built once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice

from django.db import connection
from django.db.models import CharField, Count, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from evalhub.campaigns.models import (
    AnnotatorFlag,
    Campaign,
    Criterion,
    JudgeKind,
    Judgment,
    Outcome,
)
from evalhub.exports.options import AGGREGATE_PAIR, ExportOptions
from evalhub.runs.models import GenerationRun

# Column name in a batch -> ORM path from Judgment.
COLUMNS: dict[str, str] = {
    "judgment_id": "id",
    "task_id": "task_id",
    "criterion": "criterion",
    "outcome": "outcome",
    "judge_kind": "judge_kind",
    "metric_name": "metric_name",
    "annotator_id": "annotator_id",
    "a_side": "a_side",
    "latency_ms": "latency_ms",
    "client_id": "client_id",
    "created_at": "created_at",
    "is_gold": "task__is_gold",
    "gold_answer": "task__gold_answer",
    "prompt_id": "task__prompt_id",
    "prompt": "task__prompt__text",
    "prompt_category": "task__prompt__category",
    "image_a_id": "task__image_a_id",
    "image_b_id": "task__image_b_id",
    "image_a_sha256": "task__image_a__blob__sha256",
    "image_b_sha256": "task__image_b__blob__sha256",
    "image_a_file": "task__image_a__blob__file",
    "image_b_file": "task__image_b__blob__file",
    "run_a_id": "task__run_a_id",
    "run_b_id": "task__run_b_id",
}
# Columns that describe one vote, empty on rows aggregated by pair.
PER_JUDGMENT = ("judgment_id", "annotator_id", "a_side", "latency_ms", "client_id")
PAIR_ORDER = ("task_id", "criterion", "judge_kind", "metric_name", "id")

Batch = dict[str, list]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _server_side(qs: QuerySet, chunk: int) -> Iterator[tuple]:
    """The query's rows through a psycopg named cursor, ``chunk`` rows per FETCH.

    Half the per-row cost of ``QuerySet.iterator()`` (no Django converters or wrappers).
    Outside a transaction the cursor is WITH HOLD, as Django's own iterator does.
    """
    sql, params = qs.query.sql_with_params()
    connection.ensure_connection()
    name = f"evalhub_export_{uuid.uuid4().hex}"
    withhold = not connection.in_atomic_block
    with connection.connection.cursor(name=name, withhold=withhold) as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk):
            yield from rows


def _rows(qs: QuerySet[Judgment], order: tuple[str, ...], chunk: int) -> Iterator[tuple]:
    """Row tuples in ``COLUMNS`` order; created_at as int microseconds since the epoch (UTC),
    client_id as text.

    On PostgreSQL both conversions happen in SQL (building aware datetimes and UUIDs in
    Python costs more than the rest of the export); elsewhere in Python.
    """
    paths = list(COLUMNS.values())
    if connection.vendor == "postgresql":
        table = Judgment._meta.db_table
        qs = qs.annotate(
            created_us=RawSQL(f'(EXTRACT(EPOCH FROM "{table}"."created_at") * 1000000)::bigint',
                              []),
            client_text=Cast("client_id", CharField()),
        )
        paths[paths.index("created_at")] = "created_us"
        paths[paths.index("client_id")] = "client_text"
        yield from _server_side(qs.order_by(*order).values_list(*paths), chunk)
        return
    i_created, i_client = paths.index("created_at"), paths.index("client_id")
    for row in qs.order_by(*order).values_list(*paths).iterator(chunk_size=chunk):
        row = list(row)
        row[i_created] = (row[i_created] - EPOCH) // MICROSECOND
        row[i_client] = None if row[i_client] is None else str(row[i_client])
        yield tuple(row)


@dataclass(frozen=True)
class RunInfo:
    name: str
    model: str  # "<model name>/<checkpoint name>"


@dataclass(frozen=True)
class GoldStats:
    gold_votes: int
    gold_correct: int

    @property
    def accuracy(self) -> float | None:
        return self.gold_correct / self.gold_votes if self.gold_votes else None


def run_infos(*, campaign: Campaign) -> dict[int, RunInfo]:
    """Run id -> run name and "model/checkpoint" for every run the campaign compares."""
    rows = GenerationRun.objects.filter(
        Q(campaigns=campaign) | Q(project_id=campaign.project_id)
    ).distinct().values_list("id", "name", "checkpoint__model__name", "checkpoint__name")
    return {pk: RunInfo(name, f"{model}/{ckpt}") for pk, name, model, ckpt in rows}


def gold_accuracy_by_annotator(*, campaign: Campaign) -> dict[int, GoldStats]:
    """Gold votes and correct gold votes per annotator, on the overall criterion.

    Same definition as ``evalhub.campaigns.quality.annotator_quality`` (undone votes left
    out), computed by one aggregate query instead of a scan of every vote.
    """
    rows = (Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.HUMAN,
                                    retracted_at__isnull=True, criterion=Criterion.OVERALL,
                                    task__is_gold=True)
            .values("annotator_id")
            .annotate(n=Count("id"), correct=Count("id", filter=Q(outcome=F("task__gold_answer"))))
            .values_list("annotator_id", "n", "correct"))
    return {aid: GoldStats(n, correct) for aid, n, correct in rows}


def excluded_annotators(*, campaign: Campaign) -> set[int]:
    return set(AnnotatorFlag.objects.filter(campaign=campaign, excluded=True)
               .values_list("annotator_id", flat=True))


def export_queryset(*, campaign: Campaign, options: ExportOptions) -> QuerySet[Judgment]:
    """Every judgment the options select, before pair aggregation and agreement filters.

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
    qs = qs.filter(outcome__in=outcomes)
    dropped = set() if options.include_excluded else excluded_annotators(campaign=campaign)
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


def _transpose(rows: list[tuple], names: list[str]) -> Batch:
    if not rows:
        return {name: [] for name in names}
    return dict(zip(names, map(list, zip(*rows, strict=True)), strict=True))


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


def judgment_batches(*, campaign: Campaign, options: ExportOptions) -> Iterator[Batch]:
    """Column batches of at most ``options.batch_size`` rows, in judgment id order.

    ``created_at`` holds int microseconds since 1970-01-01 UTC, ``client_id`` text or None.

    Every batch has the keys of ``COLUMNS`` plus ``votes`` and ``agreement``. By judgment,
    ``votes`` is 1 and ``agreement`` is the pair's agreement when ``min_agreement`` is set
    (else None). By pair, see ``pair_batches``.
    """
    if options.aggregate == AGGREGATE_PAIR:
        yield from pair_batches(campaign=campaign, options=options)
        return
    qs = export_queryset(campaign=campaign, options=options)
    names = list(COLUMNS)
    size = options.batch_size
    agreements = None
    if options.min_agreement is not None:
        agreements = _pair_agreements(qs, size)
    rows = _rows(qs, ("id",), size)
    while True:
        chunk = list(islice(rows, size))
        if not chunk:
            return
        batch = _transpose(chunk, names)
        if agreements is not None:
            keys = zip(batch["task_id"], batch["criterion"], batch["judge_kind"],
                       batch["metric_name"], strict=True)
            found = [agreements[key][1] for key in keys]
            keep = [i for i, value in enumerate(found) if value >= options.min_agreement]
            batch = {name: [column[i] for i in keep] for name, column in batch.items()}
            batch["agreement"] = [found[i] for i in keep]
        else:
            batch["agreement"] = [None] * len(chunk)
        batch["votes"] = [1] * len(batch["judgment_id"])
        if batch["judgment_id"]:
            yield batch


def pair_batches(*, campaign: Campaign, options: ExportOptions) -> Iterator[Batch]:
    """One row per (task, criterion, judge) with the majority outcome of its votes.

    Humans are one judge; each metric is its own judge. ``outcome`` is the majority,
    ``votes`` the number of votes, ``agreement`` the share of votes equal to the majority,
    ``created_at`` the time of the last vote; per-vote columns (judgment id, annotator, side,
    latency, client id) are None. Pairs whose majority is a tie are dropped unless ties are
    kept; pairs below ``min_agreement`` are dropped.
    """
    qs = export_queryset(campaign=campaign, options=options)
    names = list(COLUMNS)
    out_names = [*names, "votes", "agreement"]
    index = {name: i for i, name in enumerate(names)}
    i_key = [index[n] for n in ("task_id", "criterion", "judge_kind", "metric_name")]
    i_outcome, i_created = index["outcome"], index["created_at"]
    blank = {index[name] for name in PER_JUDGMENT}
    rows = _rows(qs, PAIR_ORDER, options.batch_size)
    out: list[tuple] = []

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

    key = first = last_at = None
    counts = [0, 0, 0]
    for row in rows:
        this = tuple(row[i] for i in i_key)
        if this != key:
            if key is not None:
                emit(first, counts, last_at)
                if len(out) >= options.batch_size:
                    yield _transpose(out, out_names)
                    out = []
            key, first, counts, last_at = this, row, [0, 0, 0], row[i_created]
        outcome = row[i_outcome]
        counts[0 if outcome == Outcome.A else 1 if outcome == Outcome.B else 2] += 1
        last_at = max(last_at, row[i_created])
    if key is not None:
        emit(first, counts, last_at)
    if out:
        yield _transpose(out, out_names)


def annotator_usernames(*, campaign: Campaign) -> dict[int, str]:
    from django.contrib.auth import get_user_model

    ids = (Judgment.objects.filter(campaign=campaign, annotator_id__isnull=False)
           .values("annotator_id").distinct())
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
