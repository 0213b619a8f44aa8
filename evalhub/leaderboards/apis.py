"""Leaderboard and metric-judge endpoints under /api/v1/campaigns/<id>/."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalhub.core.errors import EvalHubError
from evalhub.core.serializers import RejectUnknownFields
from evalhub.leaderboards.access import campaign_for_science
from evalhub.leaderboards.filters import parse_ab, parse_filters
from evalhub.leaderboards.results import ABTest, ABTestError, Leaderboard, json_schema
from evalhub.leaderboards.selectors import ab_test
from evalhub.leaderboards.services import (
    JUDGE_METRICS,
    leaderboard_get,
    metric_judge_epsilon,
    metric_judges_queue,
)

LEADERBOARD_PARAMS = [
    OpenApiParameter("criterion", str, description="overall (default), alignment, ..."),
    OpenApiParameter("category", str, description="only prompts of this category"),
    OpenApiParameter("min_gold_accuracy", float,
                     description="only annotators with at least this gold accuracy (0..1)"),
    OpenApiParameter("since", str, description="ISO date/datetime, inclusive (human votes)"),
    OpenApiParameter("until", str, description="ISO date/datetime, exclusive; a date includes "
                                               "that whole day (human votes)"),
    OpenApiParameter("judge", str, description="human (default) or metric:<name>"),
    OpenApiParameter("quality", str, description="annotator quality control: exclude (leave "
                                                 "flagged annotators out) or weight (crowd-BT "
                                                 "reliability weights); empty: off"),
    OpenApiParameter("pool", str, description="ids of other campaigns of the project, '4,9' "
                                              "(or repeated): their votes on this campaign's "
                                              "runs are fitted with its own (pairs and "
                                              "best-of-K rankings in one Plackett-Luce fit)"),
    OpenApiParameter("ab", str, description="two run ids 'A,B': sequential A/B test"),
    OpenApiParameter("refresh", bool, description="recompute now"),
]


def _leaderboard_schema() -> dict:
    """The leaderboard's 200: ``Leaderboard.to_json()`` and what the view adds to it."""
    schema = json_schema(Leaderboard)
    schema["properties"].update({
        "last_updated": {"type": "string", "format": "date-time"},
        "stale": {"type": "boolean",
                  "description": "votes arrived since it was computed; a refresh is queued"},
        "ab_test": {"oneOf": [json_schema(ABTest), json_schema(ABTestError)],
                    "description": "with ?ab=A,B only"},
    })
    schema["required"] += ["last_updated", "stale"]
    return schema


class LeaderboardApi(APIView):
    """Ratings with confidence intervals, metrics, agreement, position bias and categories."""

    @extend_schema(parameters=LEADERBOARD_PARAMS, responses={200: _leaderboard_schema()})
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_science(user=request.user, campaign_id=campaign_id)
        filters = parse_filters(campaign=campaign, params=request.query_params)
        ab = parse_ab(request.query_params.get("ab"))
        refresh = request.query_params.get("refresh", "").lower() in ("1", "true", "yes")
        snapshot, stale = leaderboard_get(campaign=campaign, filters=filters, refresh=refresh)
        board = snapshot.result
        body = {**board.to_json(), "last_updated": snapshot.computed_at.isoformat(),
                "stale": stale}
        if ab is not None:
            body["ab_test"] = ab_test(board=board, run_a=ab[0], run_b=ab[1]).to_json()
        return Response(body)


class MetricJudgesInputSerializer(RejectUnknownFields):
    metric = serializers.CharField(default="clip_score", max_length=90,
                                   help_text=f"one of {sorted(JUDGE_METRICS)}")

    def validate_metric(self, value: str) -> str:
        if value not in JUDGE_METRICS:
            raise serializers.ValidationError(f"choose one of {sorted(JUDGE_METRICS)}")
        return value
    epsilon = serializers.FloatField(
        required=False, allow_null=True, default=None,
        help_text="Score difference below which a pair is a tie: from 0 to the metric's range "
                  "(100 for clip_score); default: the metric's (0.25 for clip_score).")

    def validate(self, attrs: dict) -> dict:
        try:
            metric_judge_epsilon(metric=attrs["metric"], epsilon=attrs["epsilon"])
        except EvalHubError as exc:
            raise serializers.ValidationError({"epsilon": [str(exc)]}) from exc
        return attrs


class MetricJudgesApi(APIView):
    """Queue the metric judges of a campaign (one judgment per non-gold task and criterion)."""

    @extend_schema(request=MetricJudgesInputSerializer, responses={202: dict})
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_science(user=request.user, campaign_id=campaign_id)
        form = MetricJudgesInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        metric, epsilon = form.validated_data["metric"], form.validated_data["epsilon"]
        metric_judges_queue(campaign=campaign, metric=metric, epsilon=epsilon)
        return Response({"queued": True, "campaign": campaign.pk, "metric": metric,
                         "epsilon": epsilon}, status=status.HTTP_202_ACCEPTED)
