"""REST endpoints of the exports app, mounted under /api/v1/."""

from django.urls import path

from evalhub.exports.apis import CampaignExportApi
from evalhub.exports.kwise_api import CampaignRankingsExportApi

urlpatterns: list = [
    path("campaigns/<id:campaign_id>/export/", CampaignExportApi.as_view(),
         name="campaign-export"),
    path("campaigns/<id:campaign_id>/export/rankings/", CampaignRankingsExportApi.as_view(),
         name="campaign-export-rankings"),
]
