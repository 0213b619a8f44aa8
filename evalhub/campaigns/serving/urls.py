"""URLs of the annotator API, mounted under /api/v1/rate/<campaign_id>/."""

from django.urls import path

from evalhub.campaigns.serving.apis import (
    RateCampaignApi,
    RateLeasesApi,
    RateNextApi,
    RateReportApi,
    RateSkipApi,
    RateUndoApi,
    RateVoteApi,
)

urlpatterns = [
    path("", RateCampaignApi.as_view(), name="rate-campaign"),
    path("next/", RateNextApi.as_view(), name="rate-next"),
    path("leases/", RateLeasesApi.as_view(), name="rate-leases"),
    path("votes/", RateVoteApi.as_view(), name="rate-vote"),
    path("votes/undo/", RateUndoApi.as_view(), name="rate-undo"),
    path("leases/<uuid:lease_id>/skip/", RateSkipApi.as_view(), name="rate-lease-skip"),
    path("leases/<uuid:lease_id>/report/", RateReportApi.as_view(), name="rate-lease-report"),
]
