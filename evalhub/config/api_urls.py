"""All REST endpoints under /api/v1/, one router for every app."""

from django.urls import include, path

from evalhub.campaigns.apis import CampaignViewSet
from evalhub.core.converters import IdRouter
from evalhub.evaluation.apis import (
    ImageMetricViewSet,
    MetricJobViewSet,
    PromptMetricViewSet,
    RunMetricViewSet,
)
from evalhub.generation.apis import GeneratorListApi
from evalhub.projects.apis import MembershipViewSet, ProjectViewSet
from evalhub.prompts.apis import PromptSetViewSet, PromptViewSet
from evalhub.runs.apis import (
    CheckpointViewSet,
    GenerationRunViewSet,
    GenModelViewSet,
    ImageViewSet,
    ReferenceSetViewSet,
)

router = IdRouter()
router.register("projects", ProjectViewSet, basename="project")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("prompt-sets", PromptSetViewSet, basename="prompt-set")
router.register("prompts", PromptViewSet, basename="prompt")
router.register("models", GenModelViewSet, basename="model")
router.register("checkpoints", CheckpointViewSet, basename="checkpoint")
router.register("runs", GenerationRunViewSet, basename="run")
router.register("images", ImageViewSet, basename="image")
router.register("reference-sets", ReferenceSetViewSet, basename="reference-set")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("metric-jobs", MetricJobViewSet, basename="metric-job")
router.register("run-metrics", RunMetricViewSet, basename="run-metric")
router.register("prompt-metrics", PromptMetricViewSet, basename="prompt-metric")
router.register("image-metrics", ImageMetricViewSet, basename="image-metric")

urlpatterns = [
    path("auth/token/", include("evalhub.core.auth_urls")),
    path("generators/", GeneratorListApi.as_view(), name="generator-list"),
    path("rate/<id:campaign_id>/", include("evalhub.campaigns.serving.urls")),
    path("", include("evalhub.leaderboards.api_urls")),
    path("", include("evalhub.exports.api_urls")),
    path("", include(router.urls)),
]
