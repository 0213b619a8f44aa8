"""URLs of the annotator API, mounted under /api/v1/rate/<campaign_id>/."""

from django.urls import path, re_path

from evalhub.campaigns.serving.apis import (
    RateCampaignApi,
    RateLeaseActionApi,
    RateLeasesApi,
    RateNextApi,
    RateUndoApi,
    RateVoteApi,
)

urlpatterns = [
    path("", RateCampaignApi.as_view(), name="rate-campaign"),
    path("next/", RateNextApi.as_view(), name="rate-next"),
    path("leases/", RateLeasesApi.as_view(), name="rate-leases"),
    path("votes/", RateVoteApi.as_view(), name="rate-vote"),
    path("votes/undo/", RateUndoApi.as_view(), name="rate-undo"),
    re_path(r"^leases/(?P<lease_id>[0-9a-f-]{36})/(?P<action>skip|report)/$",
            RateLeaseActionApi.as_view(), name="rate-lease-action"),
]
