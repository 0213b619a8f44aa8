"""GET /api/v1/campaigns/<id>/export/rankings/?format=raw|dpo: a best-of-K campaign's votes as
JSON Lines (exports/kwise.py; docs/exports.md, "Best-of-K rankings"). Owners and scientists
only, as for the pair exports: non-members 404, annotators 403."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from evalhub.exports.access import campaign_for_export
from evalhub.exports.apis import FormatIsNotARenderer
from evalhub.exports.kwise import KWISE_FORMATS, KWISE_RAW, kwise_jsonl, rankings_export_check


class RankingsExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=KWISE_FORMATS, default=KWISE_RAW,
        help_text="raw: one row per ranking as stored; dpo: the preference pairs each ranking "
                  "states, weighted to sum to 1 per vote.")
    include_excluded = serializers.BooleanField(required=False, default=False)


class CampaignRankingsExportApi(APIView):
    """Stream a best-of-K campaign's rankings (raw) or their preference pairs (dpo)."""

    content_negotiation_class = FormatIsNotARenderer

    @extend_schema(parameters=[RankingsExportQuerySerializer],
                   responses={(200, "application/x-ndjson"): OpenApiTypes.BINARY})
    def get(self, request: Request, campaign_id: int) -> StreamingHttpResponse:
        campaign, _ = campaign_for_export(user=request.user, campaign_id=campaign_id)
        query = RankingsExportQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        kind = query.validated_data["format"]
        rankings_export_check(campaign)
        response = StreamingHttpResponse(
            kwise_jsonl(campaign=campaign, kind=kind,
                        include_excluded=query.validated_data["include_excluded"]),
            content_type="application/x-ndjson")
        name = "rankings" if kind == KWISE_RAW else "ranking-pairs"
        response["Content-Disposition"] = (
            f'attachment; filename="campaign-{campaign.pk}-{name}.jsonl"')
        return response
