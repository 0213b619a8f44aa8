"""Reading leaderboards: votes grouped in SQL -> ratings, agreement and bias statistics.

Everything statistical comes from :mod:`ratings`; this module only selects the votes, maps run
ids to matrix indices and back, and shapes the typed result
(:class:`~evalhub.leaderboards.results.Leaderboard`, stored as JSON in
:class:`~evalhub.leaderboards.models.LeaderboardSnapshot`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import operator
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from evalhub.campaigns.models import (
    Campaign,
    CampaignStatus,
    JudgeKind,
    Judgment,
    Outcome,
)
from evalhub.campaigns.quality.annotators import (
    excluded_annotator_ids,
    gold_accuracy_by_annotator,
)
from evalhub.evaluation.models import MetricName
from evalhub.evaluation.selectors import MetricColumn as EvaluationMetricColumn
from evalhub.evaluation.selectors import run_metric_table
from evalhub.leaderboards.filters import HUMAN, LeaderboardFilters
from evalhub.leaderboards.fingerprint import pooled_campaigns
from evalhub.leaderboards.kwise import KwiseVotes, joint_ratings, kwise_votes
from evalhub.leaderboards.models import LeaderboardSnapshot
from evalhub.leaderboards.quality import QUALITY_WEIGHT, quality_filtered, weighted_grouped_votes
from evalhub.leaderboards.quality_snapshot import current_reliability
from evalhub.leaderboards.results import (
    ABTest,
    ABTestError,
    CampaignInfo,
    CategorySection,
    JudgeAgreement,
    JudgePairAgreement,
    Leaderboard,
    MetricAgreement,
    MetricColumn,
    MetricValue,
    PairCount,
    PooledCampaign,
    PositionBiasRow,
    PositionBiasSection,
    Reversal,
    RunRow,
    WinRates,
)
from evalhub.runs.models import GenerationRun
from ratings import (
    PositionBias,
    aggregate_cells,
    agreement_by_pair,
    bootstrap_ratings,
    category_breakdown,
    encode_outcomes,
    fit_bradley_terry,
    flag_position_bias,
    majority_outcomes,
    metric_rank_agreement,
    observed_win_rates,
    online_elo,
    pair_agreement,
    position_bias,
    predicted_win_rates,
    rank_intervals,
    rank_with_confidence,
    run_records,
    sequential_ab_test,
)

#: Run-level metrics of images shown next to each run.
IMAGE_RUN_METRICS: tuple[str, ...] = ("fid", "kid", "clip_score", "cmmd", "lpips_diversity")
#: Run-level metrics of videos (evaluation.definitions.VIDEO_METRICS, and FVD against a
#: reference set of videos): CLIP-score over sampled frames, temporal consistency (CLIP cosine
#: of consecutive sampled frames), flicker (LPIPS of consecutive frames, 0 = no change).
VIDEO_RUN_METRICS: tuple[str, ...] = ("video_clip_score", "temporal_consistency", "flicker",
                                      "fvd")
#: Every run-level metric a leaderboard carries per run, and their direction.
RUN_METRICS: tuple[str, ...] = IMAGE_RUN_METRICS + VIDEO_RUN_METRICS
HIGHER_IS_BETTER: dict[str, bool] = {
    "fid": False, "kid": False, "cmmd": False, "clip_score": True, "lpips_diversity": True,
    "video_clip_score": True, "temporal_consistency": True, "flicker": False, "fvd": False,
}
METRIC_LABELS: dict[str, str] = dict(MetricName.choices)
UNCATEGORISED = "(uncategorised)"


def bootstrap_rounds_default() -> int:
    return int(getattr(settings, "EVALHUB_LEADERBOARD_BOOTSTRAP_ROUNDS", 1000))


# --- which votes ---------------------------------------------------------------------------


def qualified_annotator_ids(*, campaign: Campaign, min_gold_accuracy: float) -> set[int]:
    """Annotators whose gold accuracy is known and at least ``min_gold_accuracy``."""
    return {aid for aid, gold in gold_accuracy_by_annotator(campaign=campaign).items()
            if gold.accuracy is not None and gold.accuracy >= min_gold_accuracy}


def filtered_judgments(*, campaign: Campaign, filters: LeaderboardFilters) -> QuerySet[Judgment]:
    """Live (not retracted), non-gold judgments of one criterion that pass ``filters``."""
    qs = Judgment.objects.filter(campaign=campaign, criterion=filters.criterion,
                                 retracted_at__isnull=True, task__is_gold=False)
    if filters.category:
        qs = qs.filter(task__prompt__category=filters.category)
    metric = filters.metric_name
    if metric is not None:
        return qs.filter(judge_kind=JudgeKind.METRIC, metric_name=metric)
    qs = qs.filter(judge_kind=JudgeKind.HUMAN).exclude(
        annotator_id__in=excluded_annotator_ids(campaign=campaign))
    qs = quality_filtered(qs, campaign=campaign, quality=filters.quality)
    if filters.min_gold_accuracy is not None:
        qs = qs.filter(annotator_id__in=qualified_annotator_ids(
            campaign=campaign, min_gold_accuracy=filters.min_gold_accuracy))
    if filters.since is not None:
        qs = qs.filter(created_at__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(created_at__lt=filters.until)
    return qs


def metric_judge_names(*, campaign: Campaign, criterion: str | None = None) -> list[str]:
    qs = Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.METRIC)
    if criterion:
        qs = qs.filter(criterion=criterion)
    return sorted(set(qs.values_list("metric_name", flat=True)))


def metric_judge_calibrated(*, campaign: Campaign, metric: str) -> bool:
    """False when any judgment of this metric judge rests on scores from random weights."""
    return not Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.METRIC,
                                       metric_name=metric, metric_calibrated=False).exists()


def snapshot_for(*, campaign: Campaign, filters: LeaderboardFilters
                 ) -> LeaderboardSnapshot | None:
    return snapshots_for(campaigns=[campaign], filters=filters).get(campaign.pk)


def snapshots_for(*, campaigns: Iterable[Campaign], filters: LeaderboardFilters
                  ) -> dict[int, LeaderboardSnapshot]:
    """The stored snapshot of each of ``campaigns`` for ``filters``, by campaign id (none for
    a campaign without one), in one query; each knows its campaign without another query."""
    by_id = {c.pk: c for c in campaigns}
    snapshots = {}
    # One snapshot per campaign, criterion and filters (constraint one_snapshot_per_filter).
    for snapshot in LeaderboardSnapshot.objects.filter(
            campaign_id__in=list(by_id), criterion=filters.criterion,
            filters_hash=filters.hash):
        snapshot.campaign = by_id[snapshot.campaign_id]
        snapshots[snapshot.campaign_id] = snapshot
    return snapshots


# --- small helpers ---------------------------------------------------------------------------


def _num(value: float | None, digits: int = 4) -> float | None:
    """``value`` rounded for display; None for None, NaN and infinities."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _count(value: float, digits: int = 1) -> float:
    """A vote count (always finite) rounded for display."""
    return round(float(value), digits)


def _matrix(values: np.ndarray, digits: int = 4) -> tuple[tuple[float | None, ...], ...]:
    return tuple(tuple(_num(v, digits) for v in row) for row in values)


_INDEX_LIST = re.compile(r"\[[\d,\s\[\]]*\]")


def name_runs_in(message: str, names: Sequence[str]) -> str:
    """Replace run indices in a :mod:`ratings` warning (``runs [2]``) with run names."""

    def render(value: object) -> str:
        if isinstance(value, list):
            if value and isinstance(value[0], list):
                return " / ".join("{" + render(v) + "}" for v in value)
            return ", ".join(render(v) for v in value)
        return names[value] if isinstance(value, int) and 0 <= value < len(names) else str(value)

    def replace(match: re.Match) -> str:
        try:
            return render(json.loads(match.group(0)))
        except ValueError:
            return match.group(0)

    return _INDEX_LIST.sub(replace, message)


def _run_rows(campaign: Campaign) -> list[GenerationRun]:
    return list(campaign.runs.select_related("checkpoint__model").order_by("id"))


def _metric_values(values: dict) -> dict[str, MetricValue]:
    return {name: MetricValue(value=_num(v.value, 6), std=_num(v.std, 6),
                              calibrated=v.calibrated, backbone=v.backbone_id,
                              label=METRIC_LABELS.get(name, name),
                              reference_set=v.reference_set,
                              reference_set_id=v.reference_set_id, computed_as=v.computed_as)
            for name, v in values.items()}


def _metric_columns(columns: dict[str, EvaluationMetricColumn]) -> dict[str, MetricColumn]:
    """How each run-level metric's values on the board were computed, in RUN_METRICS order."""
    return {name: MetricColumn(label=METRIC_LABELS.get(name, name),
                               reference_set=c.reference_set,
                               reference_set_id=c.reference_set_id, backbone=c.backbone_id,
                               computed_as=c.computed_as, computed_with=c.computed_with,
                               runs=c.runs, runs_other_way=c.runs_other_way)
            for name in (*RUN_METRICS, *sorted(set(columns) - set(RUN_METRICS)))
            if (c := columns.get(name)) is not None}


def _run_row(run: GenerationRun, metrics: dict, **stats: object) -> RunRow:
    return RunRow(id=run.id, name=run.name, checkpoint=run.checkpoint.name,
                  checkpoint_id=run.checkpoint_id, model=run.checkpoint.model.name,
                  model_id=run.checkpoint.model_id,
                  training_step=run.checkpoint.training_step,
                  metrics=_metric_values(metrics.get(run.id, {})), **stats)


#: A run without votes under the filters: no rating, no rank.
_UNRATED: dict[str, object] = {
    "rank": None, "rank_low": None, "rank_high": None, "elo": None, "elo_lower": None,
    "elo_upper": None, "elo_se": None, "online_elo": None, "win_rate": None,
    "votes": 0.0, "wins": 0.0, "losses": 0.0, "ties": 0.0,
}

POSITION_BIAS_TEST = ("exact two-sided binomial test of left-win rate = 0.5 on decisive votes; "
                      "annotators flagged at p < 0.05 / number of annotators (Bonferroni)")


# --- the leaderboard --------------------------------------------------------------------------


def _grouped_votes(qs: QuerySet[Judgment], index: dict[int, int]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(a_idx, b_idx, outcome codes, counts, categories) from GROUP BY category, pair, outcome."""
    rows = (qs.values("task__prompt__category", "task__run_a_id", "task__run_b_id", "outcome")
            .annotate(count=Count("id")).order_by())
    a, b, o, c, cats = [], [], [], [], []
    for row in rows:
        ia, ib = index.get(row["task__run_a_id"]), index.get(row["task__run_b_id"])
        if ia is None or ib is None or ia == ib:
            continue  # a run no longer part of the campaign
        a.append(ia)
        b.append(ib)
        o.append(row["outcome"])
        c.append(row["count"])
        cats.append(row["task__prompt__category"] or UNCATEGORISED)
    return (np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), encode_outcomes(o),
            np.asarray(c, dtype=np.float64), cats)


def _online_elo(qs: QuerySet[Judgment], index: dict[int, int], n: int) -> np.ndarray:
    """Online Elo over the pairwise votes in time order; NaN for a run with none (best-of-K
    rankings are not replayed: docs/leaderboards.md)."""
    rows = qs.order_by("created_at", "id").values_list("task__run_a_id", "task__run_b_id",
                                                       "outcome")
    a, b, o = [], [], []
    for run_a, run_b, outcome in rows.iterator(chunk_size=5000):
        if run_a in index and run_b in index and run_a != run_b:
            a.append(index[run_a])
            b.append(index[run_b])
            o.append(outcome)
    live = np.full(n, np.nan)  # no pairwise vote, no online Elo (not its 1000 start)
    if not a:
        return live
    ratings = online_elo(np.asarray(a), np.asarray(b), encode_outcomes(o), n).ratings
    played = np.bincount(a, minlength=n) + np.bincount(b, minlength=n) > 0
    live[played] = ratings[played]
    return live


def _position_bias(qs: QuerySet[Judgment]) -> PositionBiasSection:
    rows = list(qs.filter(outcome__in=[Outcome.A, Outcome.B], a_side__in=["left", "right"])
                .values("annotator_id", "a_side", "outcome").annotate(count=Count("id"))
                .order_by())
    # The left image won when A won and A was on the left, or B won and B was on the left.
    left_won = np.asarray([(r["outcome"] == Outcome.A) == (r["a_side"] == "left") for r in rows],
                          dtype=bool)
    groups = np.asarray([r["annotator_id"] for r in rows], dtype=np.int64)
    repeat = np.asarray([r["count"] for r in rows], dtype=np.int64)
    results = position_bias(np.repeat(left_won, repeat), np.repeat(groups, repeat))
    flags = flag_position_bias(results)
    names = dict(get_user_model().objects.filter(pk__in=set(groups.tolist()))
                 .values_list("pk", "username"))

    def row(r: PositionBias, biased: bool, **who: object) -> PositionBiasRow:
        return PositionBiasRow(n=r.n, left_wins=r.left_wins, left_rate=_num(r.left_rate),
                               p_value=_num(r.p_value, 6), ci_low=_num(r.ci_low),
                               ci_high=_num(r.ci_high), biased=biased, **who)

    overall, *per = results
    return PositionBiasSection(
        overall=row(overall, flags[0]),
        annotators=tuple(row(r, flag, annotator_id=int(r.group),
                             username=names.get(int(r.group), "?"))
                         for r, flag in zip(per, flags[1:], strict=True)),
        test=POSITION_BIAS_TEST,
    )


#: Bootstrap rounds of each category's interval: the category bars' error bars need the
#: interval's width, not its third digit, and a board has a fit per category and round.
CATEGORY_BOOTSTRAP_ROUNDS = 200


def _category_section(a: np.ndarray, b: np.ndarray, o: np.ndarray, counts: np.ndarray,
                      cats: list[str], n: int, run_ids: list[int], names: list[str],
                      games_overall: np.ndarray, *, rounds: int = CATEGORY_BOOTSTRAP_ROUNDS,
                      seed: int | None = None) -> CategorySection:
    categories = sorted(set(cats))
    if not categories:
        return CategorySection()
    cats_arr = np.asarray(cats)
    mats, cells_by_cat = {}, {}
    for cat in categories:
        keep = cats_arr == cat
        cells_by_cat[cat] = aggregate_cells(a[keep], b[keep], o[keep], n, weights=counts[keep])
        mats[cat] = cells_by_cat[cat].to_wins()
    breakdown = category_breakdown(mats)
    games = {cat: breakdown.per_category[cat].games for cat in categories}
    ratings = {cat: {run_ids[i]: _num(breakdown.ratings[k][i], 1) if games[cat][i] else None
                     for i in range(n)}
               for k, cat in enumerate(categories)}
    # Each category's 95 % interval: the percentile bootstrap of its own fit (same prior and
    # mean anchoring as breakdown.ratings, warm-started from it).
    lower, upper = {}, {}
    for cat in categories:
        boot = bootstrap_ratings(cells_by_cat[cat], rounds=min(rounds, CATEGORY_BOOTSTRAP_ROUNDS),
                                 seed=seed, workers=1, point=breakdown.per_category[cat])
        lower[cat] = {run_ids[i]: _num(boot.lower[i], 1) if games[cat][i] else None
                      for i in range(n)}
        upper[cat] = {run_ids[i]: _num(boot.upper[i], 1) if games[cat][i] else None
                      for i in range(n)}
    votes = {cat: {run_ids[i]: _num(games[cat][i], 1) for i in range(n)} for cat in categories}
    warnings = {cat: tuple(name_runs_in(w, names) for w in breakdown.per_category[cat].warnings)
                for cat in categories}
    reversals = []
    for cat, i, j in breakdown.reversals:
        # Only runs that played, overall and in the category, can swap places.
        if not (games[cat][i] and games[cat][j] and games_overall[i] and games_overall[j]):
            continue
        k = categories.index(cat)
        reversals.append(Reversal(category=cat, run=run_ids[i], run_name=names[i],
                                  other=run_ids[j], other_name=names[j],
                                  gap=_num(breakdown.ratings[k][j] - breakdown.ratings[k][i], 1)))
    reversals.sort(key=lambda r: -(r.gap or 0))
    winners = {}
    for k, cat in enumerate(categories):
        played = sorted((i for i in range(n) if games[cat][i]),
                        key=lambda i: -breakdown.ratings[k][i])
        # A category's best run is one rated above every other (to the 0.1 Elo shown): runs
        # level at the top (only ties voted, say) have no best.
        top = [_num(breakdown.ratings[k][i], 1) for i in played[:2]]
        if played and (len(top) == 1 or top[0] > top[1]):
            winners[cat] = run_ids[played[0]]
    return CategorySection(categories=tuple(categories), ratings=ratings, votes=votes,
                           lower=lower, upper=upper, reversals=tuple(reversals),
                           winners=winners, warnings=warnings)


def _judge_agreement(*, campaign: Campaign, filters: LeaderboardFilters,
                     index: dict[int, int], names: list[str], run_ids: list[int]
                     ) -> dict[str, JudgeAgreement]:
    """Per task: the human majority against each metric judge's outcome (decisive units only)."""
    human = filtered_judgments(campaign=campaign, filters=filters.with_judge(HUMAN)).filter(
        ranking__isnull=True)  # metric judges judge pairs; best-of-K rankings are not pairs
    rows = list(human.values_list("task_id", "outcome").annotate(count=Count("id")).order_by())
    if not rows:
        return {}
    units = np.repeat([r[0] for r in rows], [r[2] for r in rows])
    outcomes = np.repeat([r[1] for r in rows], [r[2] for r in rows])
    task_ids, majority = majority_outcomes(units, outcomes)
    human_by_task = dict(zip(task_ids.tolist(), majority.tolist(), strict=True))
    # The tasks people voted on as a subquery, not a list of ids: a campaign of 100,000 voted
    # tasks would bind more values than one statement may (65,535 on PostgreSQL). It selects
    # the tasks of ``rows``, the keys of ``human_by_task``, but for a vote on a new task cast
    # between the two reads: such a task is skipped below.
    judged = Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.METRIC,
                                     criterion=filters.criterion, task__is_gold=False,
                                     task_id__in=human.values("task_id"))
    by_metric: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
    for metric, task_id, run_a, run_b, outcome in judged.values_list(
            "metric_name", "task_id", "task__run_a_id", "task__run_b_id", "outcome"):
        if task_id in human_by_task:
            by_metric[metric].append((task_id, run_a, run_b, outcome))
    result = {}
    for metric, items in sorted(by_metric.items()):
        h = np.asarray([human_by_task[t] for t, _, _, _ in items], dtype=np.int8)
        j = np.minimum(encode_outcomes([o for _, _, _, o in items]), 2)
        agreement = pair_agreement(h, j)
        known = [k for k, (_, ra, rb, _) in enumerate(items) if ra in index and rb in index]
        per = agreement_by_pair(h[known], j[known], [index[items[k][1]] for k in known],
                                [index[items[k][2]] for k in known], len(run_ids))
        pairs = [JudgePairAgreement(run_a=run_ids[ia], run_b=run_ids[ib], run_a_name=names[ia],
                                    run_b_name=names[ib], n=int(cnt), agree=int(ok),
                                    rate=_num(rate))
                 for ia, ib, cnt, ok, rate in zip(per.a.tolist(), per.b.tolist(),
                                                  per.n.tolist(), per.agree.tolist(),
                                                  per.rate.tolist(), strict=True)]
        pairs.sort(key=lambda p: (p.rate, -p.n))  # where metric and people disagree most first
        result[metric] = JudgeAgreement(
            label=METRIC_LABELS.get(metric, metric),
            calibrated=metric_judge_calibrated(campaign=campaign, metric=metric),
            tasks=len(items), n=agreement.n, agree=agreement.agree,
            rate=_num(agreement.rate), ci_low=_num(agreement.ci_low),
            ci_high=_num(agreement.ci_high), by_pair=tuple(pairs))
    return result


def _rank_agreement(ratings: np.ndarray, games: np.ndarray, run_ids: list[int],
                    metrics: dict[int, dict]) -> dict[str, MetricAgreement]:
    human = np.where(games > 0, ratings, np.nan)
    columns, calibrated = {}, {}
    for name in RUN_METRICS:
        values = [metrics.get(rid, {}).get(name) for rid in run_ids]
        if sum(v is not None for v in values) == 0:
            continue
        columns[name] = np.asarray([v.value if v is not None else np.nan for v in values])
        # One value from random weights makes the whole correlation uncalibrated.
        calibrated[name] = all(v.calibrated for v in values if v is not None)
    result = metric_rank_agreement(human, columns, HIGHER_IS_BETTER)
    return {name: MetricAgreement(label=METRIC_LABELS.get(name, name), spearman=_num(r.spearman),
                                  spearman_p=_num(r.spearman_p, 6), kendall=_num(r.kendall),
                                  kendall_p=_num(r.kendall_p, 6), n=r.n,
                                  higher_is_better=HIGHER_IS_BETTER[name],
                                  calibrated=calibrated[name])
            for name, r in result.items()}


@dataclasses.dataclass(frozen=True)
class _CampaignVotes:
    """One campaign's votes on the leaderboard's runs under its filters: ``qs`` its pairwise
    judgments (online Elo, position bias), ``a, b, o, counts, cats`` them grouped
    (``_grouped_votes``), ``kwise`` its best-of-K rankings."""

    qs: QuerySet[Judgment]
    a: np.ndarray
    b: np.ndarray
    o: np.ndarray
    counts: np.ndarray
    cats: list[str]
    kwise: KwiseVotes | None

    @property
    def votes(self) -> float:
        """Votes counted: pair votes and rankings, one each (weighted under quality=weight)."""
        return float(self.counts.sum()) + (self.kwise.votes if self.kwise else 0.0)


def _campaign_votes(source: Campaign, filters: LeaderboardFilters, index: dict[int, int]
                    ) -> _CampaignVotes:
    """``source``'s votes under ``filters`` with its own exclusions and annotator quality."""
    qs = filtered_judgments(campaign=source, filters=filters)
    weights = (current_reliability(campaign=source).weights()
               if filters.quality == QUALITY_WEIGHT and not filters.metric_name else None)
    kwise = kwise_votes(qs, index, uncategorised=UNCATEGORISED, weights=weights)
    qs = qs.filter(ranking__isnull=True)
    if weights is None:
        a, b, o, counts, cats = _grouped_votes(qs, index)
    else:
        a, b, o, counts, cats = weighted_grouped_votes(qs, index, weights=weights)
    return _CampaignVotes(qs, a, b, o, counts, cats, kwise)


def leaderboard_compute(*, campaign: Campaign, filters: LeaderboardFilters,
                        rounds: int | None = None, seed: int = 0) -> Leaderboard:
    """The full leaderboard of one campaign and criterion under ``filters``.

    Bradley-Terry ratings with ``rounds`` rounds of percentile bootstrap (seed ``seed``), ranks
    and rank intervals, online Elo, records and win rates, run-level metrics and their rank
    agreement, metric judges against people, position bias and categories; every statistic
    comes from :mod:`ratings`. Store it with :meth:`Leaderboard.to_json`.

    With ``filters.pool``, the votes of those campaigns on this campaign's runs are fitted with
    this campaign's (pairs and best-of-K rankings in one Plackett-Luce fit), each campaign's
    votes filtered with its own exclusions and annotator quality. Metric judges are compared
    with people on this campaign's votes only.
    """
    rounds = bootstrap_rounds_default() if rounds is None else rounds
    runs = _run_rows(campaign)
    run_ids = [r.id for r in runs]
    names = [r.name for r in runs]
    index = {rid: k for k, rid in enumerate(run_ids)}
    n = len(runs)
    pooled = pooled_campaigns(campaign=campaign, pool=filters.pool)
    parts = [_campaign_votes(source, filters, index) for source in [campaign, *pooled]]
    # Best-of-K votes: fitted with the pairs by Plackett-Luce; records count their implied pairs.
    kwise = KwiseVotes.merged([part.kwise for part in parts])
    a, b, o, counts = (np.concatenate([getattr(part, x) for part in parts])
                       for x in ("a", "b", "o", "counts"))
    cats = [c for part in parts for c in part.cats]
    qs = functools.reduce(operator.or_, [part.qs for part in parts])
    pairwise = (a, b, o, counts)
    # Under quality=weight the counts are weights: the total is their sum, to the nearest
    # whole vote (truncating made 13.86 read as 13).
    total = round(float(counts.sum() + (kwise.votes if kwise else 0)))
    if kwise is not None:
        a, b, o = (np.concatenate([x, y]) for x, y in zip(
            (a, b, o), (kwise.a, kwise.b, kwise.outcomes), strict=True))
        counts, cats = np.concatenate([counts, kwise.counts]), cats + kwise.categories
    metric_table = run_metric_table(run_ids=run_ids)
    metrics = metric_table.values
    judges = tuple(metric_judge_names(campaign=campaign, criterion=filters.criterion))
    warnings: list[str] = []
    if filters.metric_name and filters.metric_name not in judges:
        warnings.append(f"no judgments by metric judge {filters.metric_name!r} for "
                        f"{filters.criterion!r}; run the metric judges first")
    if total == 0:
        warnings.append("no votes match these filters yet")
    warnings += [f"pooled campaign {source.name!r} has no vote on this campaign's runs under "
                 "these filters" for source, part in zip(pooled, parts[1:], strict=True)
                 if part.votes == 0]
    board = Leaderboard(
        campaign=CampaignInfo(id=campaign.id, name=campaign.name, project=campaign.project_id,
                              criteria=tuple(str(c) for c in campaign.criteria)),
        criterion=filters.criterion,
        filters=filters.as_dict(),
        judge=filters.judge,
        # A leaderboard judged by a metric on random weights is itself uncalibrated.
        judge_calibrated=(metric_judge_calibrated(campaign=campaign, metric=filters.metric_name)
                          if filters.metric_name else True),
        votes=total,
        bootstrap_rounds=rounds,
        computed_at=timezone.now(),
        metric_judges=judges,
        categories_available=tuple(sorted(
            {c or UNCATEGORISED for c in Judgment.objects.filter(
                campaign__in=[campaign, *pooled])
             .values_list("task__prompt__category", flat=True).distinct()})),
        runs=tuple(_run_row(r, metrics, **_UNRATED) for r in runs),
        order=tuple(run_ids),
        win_rates=WinRates(),
        pair_counts=(),
        metric_agreement={},
        judge_agreement={},
        position_bias=None,
        category_breakdown=CategorySection(),
        disconnected_groups=(),
        fallback_rounds=0,
        warnings=tuple(warnings),
        metric_columns=_metric_columns(metric_table.columns),
        pooled=tuple(PooledCampaign(id=source.pk, name=source.name, task_kind=source.task_kind,
                                    k=source.k, votes=_count(part.votes, 2))
                     for source, part in zip(pooled, parts[1:], strict=True)),
    )
    if n < 2 or total == 0:
        return board

    cells = aggregate_cells(a, b, o, n, weights=counts)
    wins = cells.to_wins()
    point = fit_bradley_terry(wins)
    boot = (bootstrap_ratings(cells, rounds=rounds, seed=seed, workers=1, point=point)
            if kwise is None else
            joint_ratings(a=pairwise[0], b=pairwise[1], outcomes=pairwise[2],
                          counts=pairwise[3], kwise=kwise, n=n, rounds=rounds, seed=seed))
    ratings = boot.ratings
    ranks = rank_with_confidence(boot.lower, boot.upper)
    rank_ci = rank_intervals(boot.samples) if boot.samples.shape[0] else None
    records = run_records(cells)
    games = records.games
    win_rate = records.win_rate
    live = _online_elo(qs, index, n)

    played = [c for c in point.components if games[c].sum() > 0]
    disconnected = tuple(tuple(names[i] for i in c) for c in played) if len(played) > 1 else ()
    if disconnected:
        warnings.insert(0, "disconnected comparisons: "
                        + " / ".join("{" + ", ".join(g) + "}" for g in disconnected)
                        + " were never compared across groups; ratings are only comparable "
                        "within a group")
    warnings += [name_runs_in(w, names) for w in boot.warnings]

    def stats(i: int) -> dict[str, object]:
        if games[i] == 0:
            return _UNRATED
        return {
            "rank": int(ranks[i]),
            "rank_low": None if rank_ci is None else int(rank_ci.low[i]),
            "rank_high": None if rank_ci is None else int(rank_ci.high[i]),
            "elo": _num(ratings[i], 1), "elo_lower": _num(boot.lower[i], 1),
            "elo_upper": _num(boot.upper[i], 1), "elo_se": _num(boot.std[i], 1),
            "online_elo": _num(live[i], 1), "win_rate": _num(win_rate[i]),
            "votes": _count(games[i]), "wins": _count(records.wins[i]),
            "losses": _count(records.losses[i]), "ties": _count(records.ties[i]),
        }

    order = sorted(range(n), key=lambda i: (games[i] == 0, -ratings[i]))
    return dataclasses.replace(
        board,
        runs=tuple(_run_row(runs[i], metrics, **stats(i)) for i in order),
        order=tuple(run_ids[i] for i in order),
        win_rates=WinRates(observed=_matrix(observed_win_rates(wins)[np.ix_(order, order)]),
                           predicted=_matrix(predicted_win_rates(ratings)[np.ix_(order, order)])),
        pair_counts=tuple(PairCount(run_i=run_ids[i], run_j=run_ids[j], i_won=_count(ci, 2),
                                    j_won=_count(cj, 2), ties=_count(ct, 2))
                          for i, j, (ci, cj, ct) in zip(cells.i.tolist(), cells.j.tolist(),
                                                        cells.counts.tolist(), strict=True)),
        metric_agreement=_rank_agreement(ratings, games, run_ids, metrics),
        judge_agreement=_judge_agreement(campaign=campaign, filters=filters, index=index,
                                         names=names, run_ids=run_ids),
        position_bias=None if filters.metric_name else _position_bias(qs),
        category_breakdown=_category_section(a, b, o, counts, cats, n, run_ids, names, games,
                                             rounds=rounds, seed=seed),
        disconnected_groups=disconnected,
        fallback_rounds=boot.fallback_rounds,
        warnings=tuple(warnings),
    )


def ab_test(*, board: Leaderboard, run_a: int, run_b: int, alpha: float = 0.05
            ) -> ABTest | ABTestError:
    """Anytime-valid sequential test of run B against run A from the board's pair counts."""
    names = board.run_names
    missing = [r for r in (run_a, run_b) if r not in names]
    if missing:
        return ABTestError(error=f"runs {missing} are not part of this campaign")
    wins_a, wins_b, ties = board.pair_count(run_a, run_b)
    result = sequential_ab_test(wins_b, wins_a, ties, alpha=alpha)
    name_a, name_b = names[run_a], names[run_b]
    verdict = {"b_better": f"{name_b} is better", "a_better": f"{name_a} is better"}.get(
        result.decision, "no decision yet, keep rating")
    sign = "<=" if result.decision != "keep_rating" else ">"
    message = (f"{name_b} beats {name_a} with probability {result.p_b_better:.2f} after "
               f"{result.n:g} votes; {verdict} (always-valid p = {result.always_valid_p:.3g} "
               f"{sign} {alpha:g}).")
    return ABTest(run_a=run_a, run_b=run_b, run_a_name=name_a, run_b_name=name_b,
                  wins_a=wins_a, wins_b=wins_b, ties=ties, n=_num(result.n, 2),
                  p_b_better=_num(result.p_b_better),
                  always_valid_p=_num(result.always_valid_p, 6), alpha=alpha,
                  decision=result.decision, message=message)


def campaigns_for_science(*, user, project_ids: Iterable[int]) -> QuerySet[Campaign]:
    return Campaign.objects.filter(project_id__in=list(project_ids)).select_related(
        "project").order_by("project__name", "-created_at")


def pool_choices(*, campaign: Campaign, criterion: str) -> list[Campaign]:
    """The other campaigns of ``campaign``'s project whose votes its leaderboard may pool for
    ``criterion`` (``filters.pool``): those rating it that compare at least two of its runs
    (votes on other runs do not count), newest first, failed ones left out (they never had
    votes)."""
    runs = campaign.runs.values("pk")
    others = (Campaign.objects.filter(project_id=campaign.project_id)
              .exclude(pk=campaign.pk).exclude(status=CampaignStatus.FAILED)
              .annotate(shared=Count("runs", filter=Q(runs__in=runs))).filter(shared__gte=2)
              .order_by("-created_at", "-pk"))
    return [c for c in others if criterion in c.criteria]
