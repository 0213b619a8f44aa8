"""GET /api/v1/campaigns/<id>/export/: the export as a streamed download."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from evalhub.campaigns.models import Campaign, Criterion
from evalhub.core.when import WhenField
from evalhub.exports.access import campaign_for_export
from evalhub.exports.options import (
    AGGREGATES,
    CONTENT_TYPES,
    DATA_FILE_NAMES,
    ExportOptions,
)
from evalhub.exports.services import EMPTY_MESSAGE, export_stream
from evalhub.projects.models import Role

KEEP_DROP = ["keep", "drop"]


class ExportQuerySerializer(serializers.Serializer):
    """Query parameters; the same options as ``manage.py export_preferences``."""

    # "format" is also DRF's content-negotiation parameter; it is read here, not there.
    format = serializers.CharField(max_length=20)
    aggregate = serializers.ChoiceField(choices=AGGREGATES, default="judgment")
    criterion = serializers.ListField(child=serializers.ChoiceField(choices=Criterion.values),
                                      required=False, default=list)
    category = serializers.CharField(required=False, default="", allow_blank=True,
                                     max_length=100)  # Prompt.category's length
    since = WhenField(end_of_day=False, required=False, default=None)
    until = WhenField(end_of_day=True, required=False, default=None)
    ties = serializers.ChoiceField(choices=KEEP_DROP, required=False, default=None)
    both_bad = serializers.ChoiceField(choices=KEEP_DROP, required=False, default=None)
    min_gold_accuracy = serializers.FloatField(required=False, default=None,
                                               min_value=0, max_value=1)
    include_excluded = serializers.BooleanField(required=False, default=False)
    min_agreement = serializers.FloatField(required=False, default=None, min_value=0,
                                           max_value=1)
    metric_judges = serializers.BooleanField(required=False, default=False)
    include_gold = serializers.BooleanField(required=False, default=False)
    raw_usernames = serializers.BooleanField(required=False, default=False)
    image_bytes = serializers.BooleanField(required=False, default=True)
    base_url = serializers.URLField(required=False, default="", allow_blank=True)
    bundle = serializers.ChoiceField(choices=["", "zip"], required=False, default="")

    def to_options(self) -> ExportOptions:
        data = self.validated_data

        def keep(value: str | None) -> bool | None:
            return None if value is None else value == "keep"

        return ExportOptions(
            format=data["format"], aggregate=data["aggregate"],
            criteria=tuple(data["criterion"]), prompt_category=data["category"],
            since=data["since"], until=data["until"], include_ties=keep(data["ties"]),
            include_both_bad=keep(data["both_bad"]),
            min_gold_accuracy=data["min_gold_accuracy"],
            include_excluded=data["include_excluded"], min_agreement=data["min_agreement"],
            include_metric_judges=data["metric_judges"], include_gold=data["include_gold"],
            raw_usernames=data["raw_usernames"], image_bytes=data["image_bytes"],
            base_url=data["base_url"], bundle=data["bundle"],
        )


def _query_data(request: Request) -> dict:
    data = {key: request.query_params.get(key) for key in request.query_params}
    criteria = []
    for value in request.query_params.getlist("criterion"):
        criteria += [c for c in value.split(",") if c]
    data["criterion"] = criteria
    return data


class FormatIsNotARenderer(DefaultContentNegotiation):
    """``?format=`` names the export format here, not DRF's renderer; errors are JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class CampaignExportApi(APIView):
    """Stream a campaign's votes as preference data (owners and scientists only).

    Non-members get 404, annotators 403; ``raw_usernames=true`` needs the owner role.
    The body is streamed batch by batch (Parquet row groups, JSONL lines, zip entries);
    header ``X-Export-Warning`` is set when the file has no row: no judgment matches the
    filters, or grouping by pair and ``min_agreement`` left none (the file is then empty but
    keeps its full schema).
    """

    content_negotiation_class = FormatIsNotARenderer

    @extend_schema(parameters=[ExportQuerySerializer], responses={
        (200, content_type.split(";")[0]): OpenApiTypes.BINARY
        for content_type in sorted({*CONTENT_TYPES.values(), "application/zip"})})
    def get(self, request: Request, campaign_id: int) -> StreamingHttpResponse:
        campaign, role = campaign_for_export(user=request.user, campaign_id=campaign_id)
        query = ExportQuerySerializer(data=_query_data(request))
        query.is_valid(raise_exception=True)
        if query.validated_data["raw_usernames"] and role != Role.OWNER:
            raise PermissionDenied("Only project owners may export raw usernames.")
        options = query.to_options()  # unknown format or bad combination: 400
        return download_response(campaign=campaign, options=options)


def download_response(*, campaign: Campaign, options: ExportOptions) -> StreamingHttpResponse:
    """The export as a streamed download (the API's and the export page's): the file, its
    name, and ``X-Export-Warning`` when it has no row (``services.ExportStream``)."""
    stem, _, ext = DATA_FILE_NAMES[options.format].partition(".")
    filename = f"campaign-{campaign.pk}-{stem}.{'zip' if options.bundle else ext}"
    stream = export_stream(campaign=campaign, options=options)
    response = StreamingHttpResponse(
        stream,
        content_type="application/zip" if options.bundle else CONTENT_TYPES[options.format],
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    if stream.empty:
        response["X-Export-Warning"] = EMPTY_MESSAGE
    return response
