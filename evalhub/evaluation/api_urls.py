"""REST endpoints of the evaluation app, mounted under /api/v1/."""

from evalhub.core.converters import IdSimpleRouter
from evalhub.evaluation.apis import (
    ImageMetricViewSet,
    MetricJobViewSet,
    PromptMetricViewSet,
    RunMetricViewSet,
)

router = IdSimpleRouter()
router.register("metric-jobs", MetricJobViewSet, basename="metric-job")
router.register("run-metrics", RunMetricViewSet, basename="run-metric")
router.register("prompt-metrics", PromptMetricViewSet, basename="prompt-metric")
router.register("image-metrics", ImageMetricViewSet, basename="image-metric")

urlpatterns = router.urls
