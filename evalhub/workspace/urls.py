"""The workspace's pages, mounted at the site root (evalhub/config/urls.py)."""

from django.urls import path

from evalhub.workspace import views

urlpatterns = [
    path("workspace/", views.home, name="workspace-home"),
    path("workspace/<id:project_id>/models/", views.models_page, name="workspace-models"),
    path("workspace/<id:project_id>/prompts/", views.prompts_page, name="workspace-prompts"),
    path("workspace/<id:project_id>/runs/", views.runs_page, name="workspace-runs"),
    path("workspace/<id:project_id>/references/", views.references_page,
         name="workspace-references"),
    path("workspace/<id:project_id>/metrics/", views.metrics_page, name="workspace-metrics"),
    path("workspace/runs/<id:run_id>/", views.run_page, name="workspace-run"),
    path("workspace/runs/<id:run_id>/launch/", views.run_launch, name="workspace-run-launch"),
    path("workspace/runs/<id:run_id>/progress/", views.run_progress_json,
         name="workspace-run-progress"),
    path("workspace/metric-jobs/<id:job_id>/", views.metric_job_page,
         name="workspace-metric-job"),
    path("workspace/metric-jobs/<id:job_id>/resume/", views.metric_job_resume,
         name="workspace-metric-job-resume"),
    path("workspace/metric-jobs/<id:job_id>/progress/", views.metric_job_progress_json,
         name="workspace-metric-job-progress"),
    path("workspace/delete/<slug:kind>/<id:object_id>/", views.delete_page,
         name="workspace-delete"),
]
