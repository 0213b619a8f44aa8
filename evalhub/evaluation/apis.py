"""REST API of metric jobs and metric values (owners and scientists; annotators stay blind)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from evalhub.core.filters import IdFilter, IdFilterSet
from evalhub.evaluation.definitions import JOB_METRICS
from evalhub.evaluation.models import ImageMetric, MetricJob, PromptMetric, RunMetric
from evalhub.evaluation.services import metric_job_create, metric_job_resume
from evalhub.projects.api_base import ProjectScopedReadOnlyViewSet, ProjectScopedViewSet
from evalhub.projects.permissions import require_project_role
from evalhub.projects.references import ScopedModelSerializer, ScopedPrimaryKeyRelatedField
from evalhub.runs.models import GenerationRun, ReferenceSet
from evalhub.workspace.deletion import DeletionRules

PROVENANCE_FIELDS = ["backbone_id", "weights_sha256", "calibrated", "uncalibrated",
                     "library_versions"]


class ProvenanceSerializer(ScopedModelSerializer):
    uncalibrated = serializers.SerializerMethodField(
        help_text="True when computed with random weights: not comparable with published "
                  "numbers.")

    def get_uncalibrated(self, obj) -> bool:
        return not obj.calibrated


class MetricJobSerializer(ScopedModelSerializer):
    run = ScopedPrimaryKeyRelatedField(queryset=GenerationRun.objects.all())
    reference_set = ScopedPrimaryKeyRelatedField(queryset=ReferenceSet.objects.all(),
                                                       required=False, allow_null=True)
    metrics = serializers.ListField(child=serializers.ChoiceField(choices=JOB_METRICS),
                                    allow_empty=False)
    # A JSON object; in a multipart or urlencoded body, its JSON text (a DictField wanted
    # "options.key" fields there and dropped an "options" field without a word).
    options = serializers.JSONField(required=False, default=dict,
                                    help_text="A JSON object of job options (docs/metrics.md).")
    progress = serializers.FloatField(read_only=True)

    def validate_options(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError('Give a JSON object, e.g. {"shard_size": 32}.')
        return value

    def derived_read_only(self, attrs: dict) -> dict[str, tuple[object, str]]:
        """A metric job's project is its run's: a create may name it, but only that one."""
        run = attrs.get("run")
        if run is None:
            return {}
        return {"project": (run.project_id, f"a metric job's project is its run's "
                                            f"({run.project_id}); leave project out or send "
                                            "that one.")}

    class Meta:
        model = MetricJob
        fields = ["id", "project", "run", "metrics", "reference_set", "options", "status",
                  "shards_total", "shards_done", "progress", "images_total", "not_queued",
                  "error", "metric_errors", "results", "created_at", "started_at",
                  "finished_at"]
        read_only_fields = ["id", "project", "status", "shards_total", "shards_done",
                            "progress", "images_total", "not_queued", "error", "metric_errors",
                            "results", "created_at", "started_at", "finished_at"]


class MetricJobViewSet(DeletionRules, ProjectScopedViewSet):
    """Create a metric job for a run, follow its progress, delete it once it is over."""

    serializer_class = MetricJobSerializer
    filterset_fields = ["project", "run", "status"]
    http_method_names = ["get", "post", "delete", "head", "options"]
    deletion_kind = "metric-job"

    def base_queryset(self) -> QuerySet[MetricJob]:
        return MetricJob.objects.order_by("-id")

    def perform_create(self, serializer: MetricJobSerializer) -> None:
        data = serializer.validated_data
        run = data["run"]
        require_project_role(request=self.request, project_id=run.project_id,
                             roles=self.write_roles)
        reference_set = data.get("reference_set")
        if reference_set is not None and reference_set.project_id != run.project_id:
            # Do not reveal whether a reference set of another project exists.
            raise serializers.ValidationError({"reference_set": "No such reference set in the "
                                                                "run's project."})
        serializer.instance = metric_job_create(
            run=run, metrics=data["metrics"], reference_set=reference_set,
            options=data.get("options"), created_by=self.request.user)

    @extend_schema(request=None, responses={202: MetricJobSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        """Queue again the shards of an unfinished job that are not done yet (or its finalize
        step when all are done), e.g. after the broker lost its messages.

        Safe to repeat: a shard is stored once, however often it is computed. A finished job
        (completed, partial, failed) is refused with 409: create it again to compute it anew.
        """
        job = self.get_object()
        require_project_role(request=request, project_id=job.project_id, roles=self.write_roles)
        metric_job_resume(job=job)
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)


class RunMetricSerializer(ProvenanceSerializer):
    class Meta:
        model = RunMetric
        fields = ["id", "run", "metric", "reference_set", "value", "std", "n_images",
                  "details", "computed_as", *PROVENANCE_FIELDS, "created_at"]
        read_only_fields = fields


class PromptMetricSerializer(ProvenanceSerializer):
    class Meta:
        model = PromptMetric
        fields = ["id", "run", "prompt", "metric", "value", *PROVENANCE_FIELDS, "created_at"]
        read_only_fields = fields


class ImageMetricSerializer(ProvenanceSerializer):
    run = serializers.IntegerField(source="image.run_id", read_only=True)
    prompt = serializers.IntegerField(source="image.prompt_id", read_only=True)
    seed = serializers.IntegerField(source="image.seed", read_only=True)

    class Meta:
        model = ImageMetric
        fields = ["id", "image", "run", "prompt", "seed", "metric", "value", *PROVENANCE_FIELDS,
                  "created_at"]
        read_only_fields = fields


class RunMetricViewSet(ProjectScopedReadOnlyViewSet):
    """Run-level metric values: ``?run=<id>&metric=fid``."""

    serializer_class = RunMetricSerializer
    project_path = "run__project_id"
    filterset_fields = ["run", "metric", "reference_set", "backbone_id", "calibrated"]

    def base_queryset(self) -> QuerySet[RunMetric]:
        return RunMetric.objects.order_by("run_id", "metric", "id")


class PromptMetricViewSet(ProjectScopedReadOnlyViewSet):
    """Per-prompt breakdowns: ``?run=<id>&metric=clip_score``."""

    serializer_class = PromptMetricSerializer
    project_path = "run__project_id"
    filterset_fields = ["run", "prompt", "metric", "backbone_id"]

    def base_queryset(self) -> QuerySet[PromptMetric]:
        return PromptMetric.objects.order_by("run_id", "prompt_id", "metric", "id")


class ImageMetricFilter(IdFilterSet):
    run = IdFilter(field_name="image__run_id")

    class Meta:
        model = ImageMetric
        fields = ["run", "image", "metric", "backbone_id"]


class ImageMetricViewSet(ProjectScopedReadOnlyViewSet):
    """Per-image values: ``?run=<id>&metric=clip_score``."""

    serializer_class = ImageMetricSerializer
    project_path = "image__run__project_id"
    filterset_class = ImageMetricFilter

    def base_queryset(self) -> QuerySet[ImageMetric]:
        return ImageMetric.objects.select_related("image").order_by("image_id", "metric", "id")
