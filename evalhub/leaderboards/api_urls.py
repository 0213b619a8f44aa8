"""REST endpoints of the leaderboards app, mounted under /api/v1/."""

from django.urls import path

from evalhub.leaderboards.apis import LeaderboardApi, MetricJudgesApi

urlpatterns: list = [
    path("campaigns/<id:campaign_id>/leaderboard/", LeaderboardApi.as_view(),
         name="campaign-leaderboard"),
    path("campaigns/<id:campaign_id>/metric-judges/", MetricJudgesApi.as_view(),
         name="campaign-metric-judges"),
]
