"""HTML pages of the exports app, mounted at the site root."""

from django.urls import path

from evalhub.exports import pages

urlpatterns = [
    path("campaigns/<id:campaign_id>/export/", pages.export_page, name="campaign-export-page"),
]
