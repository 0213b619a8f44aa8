"""Reading leaderboards: votes grouped in SQL -> ratings, agreement and bias statistics.

Everything statistical comes from :mod:`ratings`; this module only selects the votes, maps run
ids to matrix indices and back, and shapes a JSON-ready payload (stored in
:class:`~evalhub.leaderboards.models.LeaderboardSnapshot`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from evalhub.campaigns.models import (
    AnnotatorFlag,
    Campaign,
    JudgeKind,
    Judgment,
    Outcome,
)
from evalhub.campaigns.quality import annotator_quality
from evalhub.evaluation.models import MetricName, RunMetric
from evalhub.evaluation.selectors import run_metric_values
from evalhub.leaderboards.filters import HUMAN, LeaderboardFilters
from evalhub.leaderboards.models import LeaderboardSnapshot
from evalhub.runs.models import GenerationRun
from ratings import (
    aggregate_cells,
    bootstrap_ratings,
    category_breakdown,
    encode_outcomes,
    fit_bradley_terry,
    majority_outcomes,
    metric_rank_agreement,
    observed_win_rates,
    online_elo,
    pair_agreement,
    position_bias,
    predicted_win_rates,
    rank_with_confidence,
    sequential_ab_test,
)

#: Run-level metrics shown next to each run, and their direction.
RUN_METRICS: tuple[str, ...] = ("fid", "kid", "clip_score", "cmmd", "lpips_diversity")
HIGHER_IS_BETTER: dict[str, bool] = {
    "fid": False, "kid": False, "cmmd": False, "clip_score": True, "lpips_diversity": True,
}
METRIC_LABELS: dict[str, str] = dict(MetricName.choices)
UNCATEGORISED = "(uncategorised)"


def bootstrap_rounds_default() -> int:
    return int(getattr(settings, "EVALHUB_LEADERBOARD_BOOTSTRAP_ROUNDS", 1000))


# --- which votes ---------------------------------------------------------------------------


def excluded_annotator_ids(*, campaign: Campaign) -> set[int]:
    return set(AnnotatorFlag.objects.filter(campaign=campaign, excluded=True)
               .values_list("annotator_id", flat=True))


def qualified_annotator_ids(*, campaign: Campaign, min_gold_accuracy: float) -> set[int]:
    """Annotators whose gold accuracy is known and at least ``min_gold_accuracy``."""
    return {q.annotator_id for q in annotator_quality(campaign=campaign)
            if q.gold_accuracy is not None and q.gold_accuracy >= min_gold_accuracy}


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


def data_fingerprint(*, campaign: Campaign) -> str:
    """Changes whenever anything a leaderboard of ``campaign`` is computed from changes."""
    votes = Judgment.objects.filter(campaign=campaign).aggregate(
        n=Count("id"), last=Max("id"), retracted=Count("id", filter=Q(retracted_at__isnull=False)),
        last_retracted=Max("retracted_at"))
    flags = AnnotatorFlag.objects.filter(campaign=campaign).aggregate(
        n=Count("id"), last=Max("updated_at"))
    run_ids = sorted(campaign.runs.values_list("id", flat=True))
    metrics = RunMetric.objects.filter(run_id__in=run_ids).aggregate(
        n=Count("id"), last=Max("created_at"))
    state = {"votes": votes, "flags": flags, "runs": run_ids, "metrics": metrics,
             "criteria": campaign.criteria}
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def snapshot_for(*, campaign: Campaign, filters: LeaderboardFilters
                 ) -> LeaderboardSnapshot | None:
    return LeaderboardSnapshot.objects.filter(
        campaign=campaign, criterion=filters.criterion, filters_hash=filters.hash).first()


# --- small helpers ---------------------------------------------------------------------------


def _num(value: float | None, digits: int = 4) -> float | None:
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _matrix(values: np.ndarray, digits: int = 4) -> list[list[float | None]]:
    return [[_num(v, digits) for v in row] for row in values]


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


def _run_meta(run: GenerationRun) -> dict:
    return {"id": run.id, "name": run.name, "checkpoint": run.checkpoint.name,
            "checkpoint_id": run.checkpoint_id, "model": run.checkpoint.model.name,
            "model_id": run.checkpoint.model_id, "training_step": run.checkpoint.training_step}


def _metric_payload(values: dict) -> dict:
    return {name: {"value": _num(v.value, 6), "std": _num(v.std, 6), "calibrated": v.calibrated,
                   "backbone": v.backbone_id, "label": METRIC_LABELS.get(name, name)}
            for name, v in values.items()}


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
    rows = qs.order_by("created_at", "id").values_list("task__run_a_id", "task__run_b_id",
                                                       "outcome")
    a, b, o = [], [], []
    for run_a, run_b, outcome in rows.iterator(chunk_size=5000):
        if run_a in index and run_b in index and run_a != run_b:
            a.append(index[run_a])
            b.append(index[run_b])
            o.append(outcome)
    if not a:
        return np.full(n, 1000.0)
    return online_elo(np.asarray(a), np.asarray(b), encode_outcomes(o), n).ratings


def _rank_intervals(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2.5 / 97.5 percentiles of each run's rank over bootstrap rounds (1 = best)."""
    ranks = 1 + (samples[:, None, :] > samples[:, :, None]).sum(axis=2)
    return (np.floor(np.percentile(ranks, 2.5, axis=0)).astype(int),
            np.ceil(np.percentile(ranks, 97.5, axis=0)).astype(int))


def _position_bias(qs: QuerySet[Judgment]) -> dict:
    rows = (qs.filter(outcome__in=[Outcome.A, Outcome.B], a_side__in=["left", "right"])
            .values("annotator_id", "a_side", "outcome").annotate(count=Count("id")).order_by())
    sides, groups = [], []
    for row in rows:
        a_won = row["outcome"] == Outcome.A
        left_won = a_won == (row["a_side"] == "left")
        sides += ["left" if left_won else "right"] * row["count"]
        groups += [row["annotator_id"]] * row["count"]
    results = position_bias(np.asarray(sides, dtype=str), np.asarray(groups, dtype=np.int64))
    names = dict(get_user_model().objects.filter(pk__in=set(groups))
                 .values_list("pk", "username"))
    per = results[1:]
    threshold = 0.05 / max(len(per), 1)  # Bonferroni over annotators

    def row(r, **extra) -> dict:
        return {"n": r.n, "left_wins": r.left_wins, "left_rate": _num(r.left_rate),
                "p_value": _num(r.p_value, 6), "ci_low": _num(r.ci_low),
                "ci_high": _num(r.ci_high), **extra}

    overall = results[0]
    return {
        "overall": row(overall, biased=bool(overall.n and overall.p_value < 0.05)),
        "annotators": [row(r, annotator_id=int(r.group), username=names.get(int(r.group), "?"),
                           biased=bool(r.n and r.p_value < threshold)) for r in per],
        "test": "exact two-sided binomial test of left-win rate = 0.5 on decisive votes; "
                "annotators flagged at p < 0.05 / number of annotators (Bonferroni)",
    }


def _category_section(a, b, o, counts, cats, n, run_ids, names, games_overall) -> dict:
    categories = sorted(set(cats))
    if not categories:
        return {"categories": [], "ratings": {}, "votes": {}, "reversals": [], "winners": {}}
    mats, games = {}, {}
    cats_arr = np.asarray(cats)
    for cat in categories:
        keep = cats_arr == cat
        wins = aggregate_cells(a[keep], b[keep], o[keep], n, weights=counts[keep]).to_wins()
        mats[cat] = wins
        games[cat] = (wins + wins.T).sum(axis=1)
    breakdown = category_breakdown(mats)
    ratings, votes, warnings = {}, {}, {}
    for k, cat in enumerate(categories):
        ratings[cat] = {str(run_ids[i]): _num(breakdown.ratings[k][i], 1) if games[cat][i]
                        else None for i in range(n)}
        votes[cat] = {str(run_ids[i]): _num(games[cat][i], 1) for i in range(n)}
        warnings[cat] = [name_runs_in(w, names) for w in breakdown.per_category[cat].warnings]
    reversals = []
    for cat, i, j in breakdown.reversals:
        if not (games[cat][i] and games[cat][j] and games_overall[i] and games_overall[j]):
            continue
        k = categories.index(cat)
        reversals.append({"category": cat, "run": run_ids[i], "run_name": names[i],
                          "other": run_ids[j], "other_name": names[j],
                          "gap": _num(breakdown.ratings[k][j] - breakdown.ratings[k][i], 1)})
    reversals.sort(key=lambda r: -(r["gap"] or 0))
    winners = {}
    for k, cat in enumerate(categories):
        played = [i for i in range(n) if games[cat][i]]
        if played:
            best = max(played, key=lambda i: breakdown.ratings[k][i])
            winners[cat] = run_ids[best]
    return {"categories": categories, "ratings": ratings, "votes": votes,
            "reversals": reversals, "winners": winners, "warnings": warnings}


def _judge_agreement(*, campaign: Campaign, filters: LeaderboardFilters,
                     index: dict[int, int], names: list[str], run_ids: list[int]) -> dict:
    """Per task: the human majority against each metric judge's outcome (decisive units only)."""
    human = filtered_judgments(campaign=campaign, filters=filters.with_judge(HUMAN))
    rows = list(human.values_list("task_id", "outcome").annotate(count=Count("id")).order_by())
    if not rows:
        return {}
    units = np.repeat([r[0] for r in rows], [r[2] for r in rows])
    outcomes = np.repeat([r[1] for r in rows], [r[2] for r in rows])
    task_ids, majority = majority_outcomes(units, outcomes)
    human_by_task = dict(zip(task_ids.tolist(), majority.tolist(), strict=True))
    judged = Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.METRIC,
                                     criterion=filters.criterion, task__is_gold=False,
                                     task_id__in=list(human_by_task))
    by_metric: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
    for metric, task_id, run_a, run_b, outcome in judged.values_list(
            "metric_name", "task_id", "task__run_a_id", "task__run_b_id", "outcome"):
        by_metric[metric].append((task_id, run_a, run_b, outcome))
    result = {}
    for metric, items in sorted(by_metric.items()):
        h = np.asarray([human_by_task[t] for t, _, _, _ in items], dtype=np.int8)
        j = np.minimum(encode_outcomes([o for _, _, _, o in items]), 2)
        agreement = pair_agreement(h, j)
        decisive = (h != 2) & (j != 2)
        per_pair: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
        for (_, run_a, run_b, _), d, same in zip(items, decisive, h == j, strict=True):
            if d and run_a in index and run_b in index:
                key = (run_a, run_b)
                per_pair[key][0] += 1
                per_pair[key][1] += int(same)
        pairs = [{"run_a": ra, "run_b": rb, "run_a_name": names[index[ra]],
                  "run_b_name": names[index[rb]], "n": cnt, "agree": ok,
                  "rate": _num(ok / cnt)} for (ra, rb), (cnt, ok) in per_pair.items()]
        pairs.sort(key=lambda p: (p["rate"], -p["n"]))
        result[metric] = {
            "label": METRIC_LABELS.get(metric, metric),
            "calibrated": metric_judge_calibrated(campaign=campaign, metric=metric),
            "tasks": len(items), "n": agreement.n, "agree": agreement.agree,
            "rate": _num(agreement.rate), "ci_low": _num(agreement.ci_low),
            "ci_high": _num(agreement.ci_high), "by_pair": pairs,
        }
    return result


def _rank_agreement(ratings: np.ndarray, games: np.ndarray, run_ids: list[int],
                    metrics: dict[int, dict]) -> dict:
    human = np.where(games > 0, ratings, np.nan)
    columns, calibrated = {}, {}
    for name in RUN_METRICS:
        values = [metrics.get(rid, {}).get(name) for rid in run_ids]
        if sum(v is not None for v in values) == 0:
            continue
        columns[name] = np.asarray([v.value if v is not None else np.nan for v in values])
        calibrated[name] = all(v.calibrated for v in values if v is not None)
    result = metric_rank_agreement(human, columns, HIGHER_IS_BETTER)
    return {name: {"label": METRIC_LABELS.get(name, name), "spearman": _num(r.spearman),
                   "spearman_p": _num(r.spearman_p, 6), "kendall": _num(r.kendall),
                   "kendall_p": _num(r.kendall_p, 6), "n": r.n,
                   "higher_is_better": HIGHER_IS_BETTER[name], "calibrated": calibrated[name]}
            for name, r in result.items()}


def leaderboard_compute(*, campaign: Campaign, filters: LeaderboardFilters,
                        rounds: int | None = None, seed: int = 0) -> dict:
    """The full leaderboard of one campaign and criterion under ``filters`` (JSON-ready)."""
    rounds = bootstrap_rounds_default() if rounds is None else rounds
    runs = _run_rows(campaign)
    run_ids = [r.id for r in runs]
    names = [r.name for r in runs]
    index = {rid: k for k, rid in enumerate(run_ids)}
    n = len(runs)
    qs = filtered_judgments(campaign=campaign, filters=filters)
    a, b, o, counts, cats = _grouped_votes(qs, index)
    total = int(counts.sum())
    metrics = run_metric_values(run_ids=run_ids)
    warnings: list[str] = []
    payload: dict = {
        "campaign": {"id": campaign.id, "name": campaign.name, "project": campaign.project_id,
                     "criteria": campaign.criteria},
        "criterion": filters.criterion,
        "filters": filters.as_dict(),
        "judge": filters.judge,
        # A leaderboard judged by a metric on random weights is itself uncalibrated.
        "judge_calibrated": (metric_judge_calibrated(campaign=campaign,
                                                     metric=filters.judge.split(":", 1)[1])
                             if filters.judge.startswith("metric:") else True),
        "votes": total,
        "bootstrap_rounds": rounds,
        "computed_at": timezone.now().isoformat(),
        "metric_judges": metric_judge_names(campaign=campaign, criterion=filters.criterion),
        "categories_available": sorted(
            {c or UNCATEGORISED for c in Judgment.objects.filter(campaign=campaign)
             .values_list("task__prompt__category", flat=True).distinct()}),
    }
    if filters.metric_name and not payload["metric_judges"].count(filters.metric_name):
        warnings.append(f"no judgments by metric judge {filters.metric_name!r} for "
                        f"{filters.criterion!r}; run the metric judges first")
    if n < 2 or total == 0:
        if total == 0:
            warnings.append("no votes match these filters yet")
        payload.update({
            "runs": [{**_run_meta(r), "rank": None, "rank_low": None, "rank_high": None,
                      "elo": None, "elo_lower": None, "elo_upper": None, "online_elo": None,
                      "win_rate": None, "votes": 0, "wins": 0, "losses": 0, "ties": 0,
                      "metrics": _metric_payload(metrics.get(r.id, {}))} for r in runs],
            "order": run_ids, "win_rates": {"observed": [], "predicted": []},
            "pair_counts": [], "metric_agreement": {}, "judge_agreement": {},
            "position_bias": None, "category_breakdown": {"categories": [], "reversals": []},
            "disconnected_groups": [], "warnings": warnings,
        })
        return payload

    cells = aggregate_cells(a, b, o, n, weights=counts)
    wins = cells.to_wins()
    point = fit_bradley_terry(wins)
    boot = bootstrap_ratings(cells, rounds=rounds, seed=seed, workers=1, point=point)
    ratings = boot.ratings
    games = point.games
    ranks = rank_with_confidence(boot.lower, boot.upper)
    rank_low, rank_high = _rank_intervals(boot.samples)
    live = _online_elo(qs, index, n)
    observed = observed_win_rates(wins)
    predicted = predicted_win_rates(ratings)
    # Raw outcomes per run: cells hold (i won, j won, tie) per pair.
    won = np.zeros(n)
    lost = np.zeros(n)
    tied = np.zeros(n)
    pair_counts = []
    for i, j, (ci, cj, ct) in zip(cells.i, cells.j, cells.counts, strict=True):
        won[i] += ci
        lost[j] += ci
        won[j] += cj
        lost[i] += cj
        tied[i] += ct
        tied[j] += ct
        pair_counts.append({"run_i": run_ids[i], "run_j": run_ids[j], "i_won": _num(ci, 2),
                            "j_won": _num(cj, 2), "ties": _num(ct, 2)})
    with np.errstate(invalid="ignore", divide="ignore"):
        win_rate = np.where(games > 0, wins.sum(axis=1) / games, np.nan)

    played = [c for c in point.components if games[c].sum() > 0]
    disconnected = [[names[i] for i in c] for c in played] if len(played) > 1 else []
    if disconnected:
        warnings.insert(0, "disconnected comparisons: "
                        + " / ".join("{" + ", ".join(g) + "}" for g in disconnected)
                        + " were never compared across groups; ratings are only comparable "
                        "within a group")
    warnings += [name_runs_in(w, names) for w in boot.warnings]

    order = sorted(range(n), key=lambda i: (games[i] == 0, -ratings[i]))
    rows = []
    for i in order:
        has = games[i] > 0
        rows.append({
            **_run_meta(runs[i]),
            "rank": int(ranks[i]) if has else None,
            "rank_low": int(rank_low[i]) if has else None,
            "rank_high": int(rank_high[i]) if has else None,
            "elo": _num(ratings[i], 1) if has else None,
            "elo_lower": _num(boot.lower[i], 1) if has else None,
            "elo_upper": _num(boot.upper[i], 1) if has else None,
            "elo_se": _num(boot.std[i], 1) if has else None,
            "online_elo": _num(live[i], 1) if has else None,
            "win_rate": _num(win_rate[i]),
            "votes": _num(games[i], 1), "wins": _num(won[i], 1), "losses": _num(lost[i], 1),
            "ties": _num(tied[i], 1),
            "metrics": _metric_payload(metrics.get(run_ids[i], {})),
        })
    payload.update({
        "runs": rows,
        "order": [run_ids[i] for i in order],
        "win_rates": {"observed": _matrix(observed[np.ix_(order, order)]),
                      "predicted": _matrix(predicted[np.ix_(order, order)])},
        "pair_counts": pair_counts,
        "metric_agreement": _rank_agreement(ratings, games, run_ids, metrics),
        "judge_agreement": _judge_agreement(campaign=campaign, filters=filters, index=index,
                                            names=names, run_ids=run_ids),
        "position_bias": None if filters.metric_name else _position_bias(qs),
        "category_breakdown": _category_section(a, b, o, counts, cats, n, run_ids, names, games),
        "disconnected_groups": disconnected,
        "fallback_rounds": boot.fallback_rounds,
        "warnings": warnings,
    })
    return payload


def ab_test(*, payload: dict, run_a: int, run_b: int, alpha: float = 0.05) -> dict:
    """Anytime-valid sequential test of run B against run A from the payload's pair counts."""
    names = {r["id"]: r["name"] for r in payload.get("runs", [])}
    missing = [r for r in (run_a, run_b) if r not in names]
    if missing:
        return {"error": f"runs {missing} are not part of this campaign"}
    wins_a = wins_b = ties = 0.0
    for cell in payload.get("pair_counts", []):
        if {cell["run_i"], cell["run_j"]} == {run_a, run_b}:
            a_first = cell["run_i"] == run_a
            wins_a = cell["i_won"] if a_first else cell["j_won"]
            wins_b = cell["j_won"] if a_first else cell["i_won"]
            ties = cell["ties"]
    result = sequential_ab_test(wins_b, wins_a, ties, alpha=alpha)
    name_a, name_b = names[run_a], names[run_b]
    verdict = {"b_better": f"{name_b} is better", "a_better": f"{name_a} is better"}.get(
        result.decision, "no decision yet, keep rating")
    sign = "<=" if result.decision != "keep_rating" else ">"
    message = (f"{name_b} beats {name_a} with probability {result.p_b_better:.2f} after "
               f"{result.n:g} votes; {verdict} (always-valid p = {result.always_valid_p:.3g} "
               f"{sign} {alpha:g}).")
    return {"run_a": run_a, "run_b": run_b, "run_a_name": names[run_a],
            "run_b_name": names[run_b], "wins_a": wins_a, "wins_b": wins_b, "ties": ties,
            "n": _num(result.n, 2), "p_b_better": _num(result.p_b_better),
            "always_valid_p": _num(result.always_valid_p, 6), "alpha": alpha,
            "decision": result.decision, "message": message}


def campaigns_for_science(*, user, project_ids: Iterable[int]) -> QuerySet[Campaign]:
    return Campaign.objects.filter(project_id__in=list(project_ids)).select_related(
        "project").order_by("project__name", "-created_at")
