"""Dashboards: campaign list, campaign leaderboard, a model's checkpoints along training.

Science roles only (annotators get 403, non-members 404). plotly.js is a static file
(``static/vendor/plotly/``: the cartesian bundle, which draws the scatter, bar and heatmap
traces of charts.py in 1.5 MB instead of the full 4.8 MB), compressed by whitenoise.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render

from evalhub.campaigns.models import Campaign, CampaignStatus
from evalhub.campaigns.selectors import campaign_medium
from evalhub.core.converters import object_id
from evalhub.core.errors import EvalHubError
from evalhub.core.text import counted
from evalhub.evaluation.selectors import MetricColumn, run_metric_table
from evalhub.leaderboards import charts
from evalhub.leaderboards.access import campaign_for_science, model_for_science
from evalhub.leaderboards.filters import (
    AB_SAME_RUN_CODE,
    LeaderboardFilters,
    parse_ab,
    parse_filters,
)
from evalhub.leaderboards.fingerprint import data_fingerprint, leaderboard_changes_since
from evalhub.leaderboards.quality import QUALITY_MODES, annotator_treatments
from evalhub.leaderboards.quality_snapshot import quality_get
from evalhub.leaderboards.results import ABTest
from evalhub.leaderboards.selectors import (
    IMAGE_RUN_METRICS,
    METRIC_LABELS,
    VIDEO_RUN_METRICS,
    ab_test,
    pool_choices,
)
from evalhub.leaderboards.services import leaderboard_get, leaderboards_get, snapshot_figures
from evalhub.leaderboards.text import (
    AB_NOT_A_RUN,
    AB_SAME_RUN,
    RANK_DEFINITION,
    MetricHeader,
    ab_detail,
    fit_method,
    metric_cell,
    metric_column_note,
    metric_headers,
    pooled_summary,
    ranking_rows,
    run_count_column,
)
from evalhub.projects.selectors import SCIENCE_ROLES, projects_for_user
from evalhub.runs.models import GenerationRun, GenModel

WIDE_CHARTS = {"metric-scatter", "categories", "checkpoint-elo"}
FILTER_KEYS = ("criterion", "judge", "category", "min_gold_accuracy", "since", "until",
               "quality")


@login_required
def dashboard_home(request: HttpRequest) -> HttpResponse:
    projects = projects_for_user(user=request.user, roles=SCIENCE_ROLES)
    campaigns = Campaign.objects.filter(project__in=projects).select_related("project").order_by(
        "project__name", "-created_at")
    models = GenModel.objects.filter(project__in=projects).select_related("project").order_by(
        "project__name", "name")
    return render(request, "leaderboards/dashboard.html",
                  {"campaigns": campaigns, "models": models})


def _ab_choice(params: QueryDict) -> tuple[tuple[int, int] | None, str | None,
                                           tuple[int | None, int | None]]:
    """The A/B test asked for: (run A id, run B id) or None, the error to show beside the A/B
    form, and the runs its pickers show chosen.

    The form sends ``ab_a`` and ``ab_b``; a link may carry the API's ``ab=3,7``. Both are
    read by ``parse_ab``; a refusal of the form's pick is worded for the form
    (``AB_SAME_RUN``, ``AB_NOT_A_RUN``), one of a link in ``parse_ab``'s words."""
    raw_a, raw_b = (params.get("ab_a") or "").strip(), (params.get("ab_b") or "").strip()
    from_form = not params.get("ab")
    if from_form and not (raw_a and raw_b):
        return None, None, (None, None)
    try:
        ab = parse_ab(f"{raw_a},{raw_b}" if from_form else params["ab"])
    except EvalHubError as exc:
        if not from_form:
            return None, exc.message, (None, None)
        words = AB_SAME_RUN if exc.code == AB_SAME_RUN_CODE else AB_NOT_A_RUN
        # The pickers keep what was picked (an option whose value is not an id matches none).
        return None, words, (object_id(raw_a), object_id(raw_b))
    return ab, None, ab


def _with_data_ids(figures: list[dict]) -> list[dict]:
    return [{**f, "data_id": f"{f['id']}-data", "wide": f["id"] in WIDE_CHARTS}
            for f in figures]


@login_required
def dashboard_campaign(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_for_science(user=request.user, campaign_id=campaign_id)
    error, unpooled = None, []
    try:
        filters = parse_filters(campaign=campaign, params=request.GET, unpooled=unpooled)
    except EvalHubError as exc:
        error, filters, unpooled = exc.message, LeaderboardFilters(), []
    # Apart from the filters: a bad pick of runs leaves the filters as chosen and is said
    # next to the A/B form.
    ab, ab_error, ab_selected = _ab_choice(request.GET)
    # Everything statistical is read from snapshots the background refresh stores: the
    # leaderboard with its charts, and the annotators' reliability (no estimate per request).
    fingerprint = data_fingerprint(campaign=campaign)
    snapshot, stale = leaderboard_get(campaign=campaign, filters=filters,
                                      fingerprint=fingerprint)
    quality = quality_get(campaign=campaign, fingerprint=fingerprint)
    board = snapshot.result
    rows, any_uncal = ranking_rows(board)
    run_names = board.run_names
    ab_result = ab_test(board=board, run_a=ab[0], run_b=ab[1]) if ab else None
    return render(request, "leaderboards/campaign.html", {
        "campaign": campaign, "medium": campaign_medium(campaign=campaign), "board": board,
        "snapshot": snapshot, "stale": stale,
        "changes": leaderboard_changes_since(campaign=campaign, pool=filters.pool,
                                             since=snapshot.computed_at) if stale else None,
        "rows": rows, "any_uncalibrated": any_uncal, "metric_headers": metric_headers(board),
        "rank_definition": RANK_DEFINITION,
        # The header names the fit as the Elo chart's legend does (one function).
        "fit_method": fit_method(task_kind=campaign.task_kind, k=campaign.k,
                                 pooled=board.pooled),
        "charts": _with_data_ids(snapshot_figures(snapshot)),
        # The A/B form carries the filters as hidden fields: the pool as one "4,9".
        "filters": {k: request.GET.get(k, "") for k in FILTER_KEYS}
        | {"pool": ",".join(map(str, filters.pool))},
        "criteria": campaign.criteria,
        "judges": ["human", *(f"metric:{m}" for m in board.metric_judges)],
        "error": error,
        "votes_text": counted(board.votes, "vote"),
        "count_column": run_count_column(task_kind=campaign.task_kind, pooled=board.pooled),
        # Campaigns the leaderboard may pool votes from: the project's others rating the
        # board's criterion (the form's checkboxes; parse_filters checks what is sent).
        "pool_choices": pool_choices(campaign=campaign, criterion=board.criterion),
        "pooled_ids": set(filters.pool),
        "pooled": [(p.id, pooled_summary(p)) for p in board.pooled],
        "unpooled": unpooled,
        "ab": ab_result,
        "ab_detail": ab_detail(ab_result) if isinstance(ab_result, ABTest) else "",
        "ab_error": ab_error,
        "ab_selected": ab_selected,
        "reversals": board.category_breakdown.reversals[:20],
        "category_winners": {c: run_names.get(r, r) for c, r in
                             board.category_breakdown.winners.items()},
        # Who quality control leaves out or down-weights, and why (as of quality.computed_at).
        "quality_modes": QUALITY_MODES,
        "quality": quality,
        "quality_rows": annotator_treatments(reliability=quality.reliability,
                                             quality=filters.quality),
    })


def _checkpoint_context(model: GenModel, user) -> dict:
    checkpoints = list(model.checkpoints.order_by("training_step", "name"))
    runs = list(GenerationRun.objects.filter(checkpoint__model=model)
                .select_related("checkpoint").order_by("checkpoint__training_step", "id"))
    metric_table = run_metric_table(run_ids=[r.id for r in runs])
    metrics = metric_table.values
    # A failed campaign never had tasks and never will have votes: counting it, or saying it
    # has "no line yet", would mislead.
    campaigns = list(Campaign.objects.filter(runs__in=runs).exclude(
        status=CampaignStatus.FAILED).distinct().order_by("created_at"))
    series, elo_by_run = [], {}
    # Every campaign's default board at once: fresh ones cost no query per campaign.
    boards = leaderboards_get(campaigns=campaigns, filters=LeaderboardFilters())
    for campaign, (snapshot, _) in zip(campaigns, boards, strict=True):
        points = []
        for row in snapshot.result.runs:
            if row.model_id != model.id or row.elo is None:
                continue
            points.append({"step": row.training_step, "elo": row.elo,
                           "lower": row.elo_lower, "upper": row.elo_upper, "run": row.name})
            elo_by_run.setdefault(row.id, []).append(
                {"campaign": campaign.name, "campaign_id": campaign.id, "elo": row.elo,
                 "lower": row.elo_lower, "upper": row.elo_upper})
        series.append({"name": campaign.name, "points": points})
    metric_points, table = [], []
    any_uncal = False
    # The image metrics always; a video metric when one of the model's runs has it.
    columns = IMAGE_RUN_METRICS + tuple(
        name for name in VIDEO_RUN_METRICS if any(name in values for values in metrics.values()))
    computed = {name: column.computed_with for name, column in metric_table.columns.items()}
    for run in runs:
        values = {name: {"value": v.value, "calibrated": v.calibrated,
                         "computed_with": computed[name]}
                  for name, v in metrics.get(run.id, {}).items()}
        metric_points.append({"step": run.checkpoint.training_step, "run": run.name,
                              "metrics": values})
        cells = []
        for name in columns:
            value = values.get(name)
            text, uncal = (metric_cell(None) if value is None
                           else metric_cell(value["value"], value["calibrated"]))
            any_uncal = any_uncal or uncal
            cells.append({"text": text.rstrip("*"), "uncalibrated": uncal,
                          "computed_with": "" if value is None else value["computed_with"]})
        table.append({"run": run, "checkpoint": run.checkpoint, "cells": cells,
                      "elo": elo_by_run.get(run.id, [])})
    figures = []
    if (fig := charts.checkpoint_elo_chart(series)) is not None:
        figures.append({"id": "checkpoint-elo", "figure": fig})
    figures += charts.checkpoint_metric_charts(metric_points)
    # Said beside the chart: what has no point on a training-step axis, and why.
    without_line = [s["name"] for s in series
                    if not any(p["step"] is not None for p in s["points"])]
    without_step = [r.name for r in runs if r.checkpoint.training_step is None]
    return {"model": model, "checkpoints": checkpoints, "table": table,
            "campaigns_without_line": without_line, "runs_without_step": without_step,
            "charts": _with_data_ids(figures),
            "metric_headers": [_model_header(m, metric_table.columns.get(m)) for m in columns],
            "any_uncalibrated": any_uncal, "campaigns": campaigns}


def _model_header(metric: str, column: MetricColumn | None) -> MetricHeader:
    """A metric column of the model's table: its label and how its values were computed."""
    label = METRIC_LABELS.get(metric, metric)
    note = ("" if column is None
            else metric_column_note(label, column.computed_with, column.runs_other_way))
    return MetricHeader(key=metric, label=label, note=note)


@login_required
def dashboard_model(request: HttpRequest, model_id: int) -> HttpResponse:
    model = model_for_science(user=request.user, model_id=model_id)
    return render(request, "leaderboards/model.html", _checkpoint_context(model, request.user))
