"""REST endpoints of the evaluation app, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from evalhub.evaluation.apis import (
    ImageMetricViewSet,
    MetricJobViewSet,
    PromptMetricViewSet,
    RunMetricViewSet,
)

router = SimpleRouter()
router.register("metric-jobs", MetricJobViewSet, basename="metric-job")
router.register("run-metrics", RunMetricViewSet, basename="run-metric")
router.register("prompt-metrics", PromptMetricViewSet, basename="prompt-metric")
router.register("image-metrics", ImageMetricViewSet, basename="image-metric")

urlpatterns = router.urls
