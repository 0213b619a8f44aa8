"""HTML pages of the leaderboards app, mounted at the site root."""

from django.urls import path

from evalhub.leaderboards import views

urlpatterns: list = [
    path("dashboard/", views.dashboard_home, name="dashboard"),
    path("dashboard/campaigns/<id:campaign_id>/", views.dashboard_campaign,
         name="dashboard-campaign"),
    path("dashboard/models/<id:model_id>/", views.dashboard_model, name="dashboard-model"),
]
