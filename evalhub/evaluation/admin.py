from django.contrib import admin

from evalhub.evaluation.models import (
    FeatureCacheEntry,
    ImageMetric,
    MetricJob,
    MetricShard,
    PairMetric,
    PromptMetric,
    ReferenceStats,
    RunMetric,
)
from evalhub.projects.admin import ProjectFixedAdmin


class MetricShardInline(admin.TabularInline):
    model = MetricShard
    extra = 0
    fields = ["index", "kind", "status", "attempts", "features_computed", "error", "updated_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(MetricJob)
class MetricJobAdmin(ProjectFixedAdmin):
    list_display = ["id", "run", "metrics", "reference_set", "status", "shards_done",
                    "shards_total", "created_at", "finished_at"]
    # not_queued: the jobs an operator resumes once the broker is back.
    list_filter = ["status", "not_queued", "project"]
    search_fields = ["run__name"]
    readonly_fields = ["shards_total", "shards_done", "images_total", "results", "metric_errors",
                       "reference_digest", "images_done_at_resume", "not_queued", "started_at",
                       "finished_at"]
    inlines = [MetricShardInline]


@admin.register(FeatureCacheEntry)
class FeatureCacheEntryAdmin(admin.ModelAdmin):
    list_display = ["sha256", "backbone_id", "dim", "created_at"]
    list_filter = ["backbone_id"]
    search_fields = ["sha256"]
    exclude = ["features"]


@admin.register(ReferenceStats)
class ReferenceStatsAdmin(admin.ModelAdmin):
    list_display = ["reference_set", "backbone_id", "n", "dim", "calibrated", "updated_at"]
    list_filter = ["backbone_id", "calibrated"]
    exclude = ["stats"]


class ProvenanceAdmin(admin.ModelAdmin):
    list_filter = ["metric", "calibrated", "backbone_id"]


@admin.register(RunMetric)
class RunMetricAdmin(ProvenanceAdmin):
    list_display = ["run", "metric", "value", "std", "reference_set", "n_images", "calibrated",
                    "backbone_id", "created_at"]
    search_fields = ["run__name"]


@admin.register(PromptMetric)
class PromptMetricAdmin(ProvenanceAdmin):
    list_display = ["run", "prompt", "metric", "value", "calibrated", "backbone_id"]
    raw_id_fields = ["prompt"]


@admin.register(ImageMetric)
class ImageMetricAdmin(ProvenanceAdmin):
    list_display = ["image", "metric", "value", "calibrated", "backbone_id"]
    raw_id_fields = ["image"]


@admin.register(PairMetric)
class PairMetricAdmin(ProvenanceAdmin):
    list_display = ["image_a", "image_b", "metric", "value", "calibrated", "backbone_id"]
    raw_id_fields = ["image_a", "image_b"]
