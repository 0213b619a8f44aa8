from django.urls import path

from evalhub.campaigns import views

urlpatterns = [
    path("rate/<int:campaign_id>/", views.rate_page, name="rate"),
]
