"""The campaign pages, mounted at the site root (evalhub/config/urls.py)."""

from django.urls import path

from evalhub.campaigns.manage import views

urlpatterns = [
    path("projects/<id:project_id>/campaigns/", views.campaign_list, name="campaigns-manage"),
    path("projects/<id:project_id>/campaigns/new/", views.campaign_new, name="campaign-new"),
    path("campaigns/<id:campaign_id>/manage/", views.campaign_detail, name="campaign-manage"),
    path("campaigns/<id:campaign_id>/manage/edit/", views.campaign_edit,
         name="campaign-manage-edit"),
    path("campaigns/<id:campaign_id>/manage/progress/", views.campaign_progress,
         name="campaign-manage-progress"),
    path("campaigns/<id:campaign_id>/manage/status/", views.campaign_status,
         name="campaign-manage-status"),
    path("campaigns/<id:campaign_id>/manage/close/", views.campaign_close,
         name="campaign-manage-close"),
    path("campaigns/<id:campaign_id>/manage/exclude/", views.campaign_exclude,
         name="campaign-manage-exclude"),
    path("campaigns/<id:campaign_id>/manage/annotators/", views.campaign_annotators,
         name="campaign-manage-annotators"),
    path("campaigns/<id:campaign_id>/manage/gold/", views.campaign_gold_add,
         name="campaign-manage-gold"),
    path("campaigns/<id:campaign_id>/manage/gold/<id:task_id>/remove/",
         views.campaign_gold_remove, name="campaign-manage-gold-remove"),
    path("campaigns/<id:campaign_id>/manage/metric-judge/", views.campaign_metric_judge,
         name="campaign-manage-metric-judge"),
]
