from __future__ import annotations

from contextlib import ExitStack

from django.conf import settings
from django.db.models import Count, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from evalhub.blobs.models import VideoBlob
from evalhub.blobs.sources import open_source
from evalhub.core.errors import EvalHubError, InvalidFields
from evalhub.core.serializers import RejectUnknownFields, counted_or_count, duplicate
from evalhub.core.uploads import uploaded_file_path
from evalhub.generation.services import MissingWeights, checkpoint_check, generation_launch
from evalhub.projects.api_base import ProjectScopedReadOnlyViewSet, ProjectScopedViewSet
from evalhub.projects.permissions import require_project_role
from evalhub.projects.references import ScopedModelSerializer
from evalhub.runs.importing.services import (
    reference_set_import,
    run_create_and_import,
    run_images_import,
)
from evalhub.runs.models import (
    IMPORTED_GENERATOR,
    Checkpoint,
    GenerationFailure,
    GenerationRun,
    GenModel,
    Image,
    ReferenceSet,
    RunSource,
)
from evalhub.runs.services import (
    checkpoint_change_check,
    run_change_check,
    run_create,
    run_name_check,
    training_step_check,
)
from evalhub.workspace.deletion import DeletionRules
from generators import UnknownGenerator


class GenModelSerializer(ScopedModelSerializer):
    class Meta:
        model = GenModel
        fields = ["id", "project", "name", "description", "created_at"]
        read_only_fields = ["id", "created_at"]


class CheckpointSerializer(ScopedModelSerializer):
    class Meta:
        model = Checkpoint
        fields = ["id", "model", "name", "training_step", "weights_uri", "generator",
                  "parameters", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        current = self.instance
        if current is not None:
            try:
                checkpoint_change_check(checkpoint=current, changes=attrs)
            except InvalidFields as exc:
                raise serializers.ValidationError(exc.fields) from exc
        try:
            training_step_check(attrs.get("training_step"))
        except EvalHubError as exc:
            raise serializers.ValidationError({"training_step": [str(exc)]}) from exc
        generator = attrs.get("generator",
                              current.generator if current else IMPORTED_GENERATOR)
        try:
            checkpoint_check(generator=generator, parameters=attrs.get(
                "parameters", current.parameters if current else {}), weights_uri=attrs.get(
                "weights_uri", current.weights_uri if current else ""))
        except EvalHubError as exc:
            field = ("generator" if isinstance(exc.__cause__, UnknownGenerator)
                     else "weights_uri" if isinstance(exc, MissingWeights) else "parameters")
            raise serializers.ValidationError({field: [str(exc)]}) from exc
        return attrs


class ImportReportSerializer(serializers.Serializer):
    """What an import added, counted against the caller's project only: bytes stored for
    other projects count as new, so the answer never says what exists elsewhere."""

    images_created = serializers.IntegerField(
        help_text="Images (or videos) added to the run or reference set (a reference set "
                  "holds each file once).")
    blobs_created = serializers.IntegerField(
        help_text="Distinct files this project did not hold before.")
    duplicates_of_existing_blobs = serializers.IntegerField(
        help_text="Files whose bytes this project already held (in any of its runs, reference "
                  "sets or prompts), or, for a run, repeated within the import; other "
                  "projects' files are never counted.")
    files_skipped = serializers.IntegerField(
        help_text="Files of the zip the import did not take: for a run, those its manifest "
                  "does not list; for a reference set, those that are not image or video "
                  "files (README.txt, .DS_Store, __MACOSX/...).")
    skipped_files = serializers.ListField(
        child=serializers.CharField(),
        help_text="Their names, sorted (the first 100).")


#: Where ``GenerationRunViewSet.perform_create`` leaves the report of a create with ``archive``
#: (the serializer's context): its answer carries it, the workspace's form shows it.
IMPORT_REPORT = "import_report"


def _count_of(rows: QuerySet, key: str) -> Coalesce:
    """The number of ``rows`` whose ``key`` is the outer row: a subquery, so that two
    counts of one row do not multiply each other as two joins would."""
    return Coalesce(Subquery(rows.filter(**{key: OuterRef("pk")}).order_by().values(key)
                             .annotate(n=Count("*")).values("n")), Value(0))


class GenerationRunSerializer(ScopedModelSerializer):
    image_count = serializers.SerializerMethodField()
    archive = serializers.FileField(
        write_only=True, required=False,
        help_text="Imported runs, multipart: a zip of the run's images (with manifest.csv/jsonl "
                  "or `manifest`). The run is created with its images in one transaction: a "
                  "rejected import leaves no run behind (400 with every problem).")
    manifest = serializers.FileField(
        write_only=True, required=False,
        help_text="With `archive`: CSV or JSONL with columns file, prompt (or prompt_id), seed.")
    import_report = serializers.SerializerMethodField(
        help_text="In the answer to a create with `archive`: what the import did, the files it "
                  "skipped named (as `import-images/` answers); null otherwise (a run does not "
                  "keep it).")

    class Meta:
        model = GenerationRun
        fields = ["id", "project", "checkpoint", "prompt_set", "name", "source", "seeds",
                  "parameters", "status", "items_total", "items_done", "items_failed", "error",
                  "image_count", "media_kind", "created_at", "started_at", "finished_at",
                  "archive", "manifest", "import_report"]
        read_only_fields = ["id", "project", "status", "items_total", "items_done",
                            "items_failed", "error", "image_count", "media_kind", "created_at",
                            "started_at", "finished_at"]
        extra_kwargs = {"source": {"required": False}}

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        checkpoint = attrs.get("checkpoint")
        project_id = (self.instance.project_id if self.instance is not None
                      else checkpoint.model.project_id if checkpoint is not None else None)
        if "name" in attrs and project_id is not None:
            try:
                run_name_check(project_id=project_id, name=attrs["name"], run=self.instance)
            except EvalHubError as exc:
                raise duplicate("name", str(exc)) from exc
        if self.instance is not None:
            try:
                run_change_check(run=self.instance, changes=attrs)
            except InvalidFields as exc:
                raise serializers.ValidationError(exc.fields) from exc
        return attrs

    def derived_read_only(self, attrs: dict) -> dict[str, tuple[object, str]]:
        """A run's project is its checkpoint's: a create may name it, but only that one."""
        checkpoint = attrs.get("checkpoint")
        if checkpoint is None:
            return {}
        project_id = checkpoint.model.project_id
        return {"project": (project_id, f"the run's project is its checkpoint's ({project_id}); "
                                        "leave project out or send that one.")}

    def get_image_count(self, run: GenerationRun) -> int:
        return counted_or_count(run, "counted_images", "images")

    @extend_schema_field(ImportReportSerializer(allow_null=True))
    def get_import_report(self, run: GenerationRun) -> dict | None:
        report = self.context.get(IMPORT_REPORT)
        return ImportReportSerializer(report).data if report is not None else None


class VideoSerializer(serializers.ModelSerializer):
    """A video output as scientists see it: the original's hash and URL (owners and scientists
    only, like an image's) and what validation measured (docs/video.md)."""

    url = serializers.SerializerMethodField()
    frames = serializers.IntegerField(source="frame_count", read_only=True)

    class Meta:
        model = VideoBlob
        fields = ["sha256", "container", "codec", "width", "height", "fps", "frames",
                  "duration_s", "size_bytes", "url"]
        read_only_fields = fields

    def get_url(self, video: VideoBlob) -> str:
        return video.file.url


class ImageSerializer(ScopedModelSerializer):
    sha256 = serializers.CharField(source="blob.sha256", read_only=True)
    width = serializers.IntegerField(source="blob.width", read_only=True)
    height = serializers.IntegerField(source="blob.height", read_only=True)
    url = serializers.SerializerMethodField()
    preview_url = serializers.SerializerMethodField(
        help_text="A WebP of at most 512 px for lists, once this image's preview task has run "
                  "(seconds after its import or generation); null until then, whether or not "
                  "the same bytes have a preview elsewhere.")
    video = VideoSerializer(read_only=True, allow_null=True,
                            help_text="Null for an image; for a video output (the image is then "
                                      "its poster, the middle frame), the video.")

    class Meta:
        model = Image
        fields = ["id", "run", "prompt", "seed", "sha256", "width", "height", "elapsed_s",
                  "metadata", "url", "preview_url", "video", "created_at"]
        read_only_fields = fields

    def get_url(self, image: Image) -> str:
        return image.blob.file.url

    def get_preview_url(self, image: Image) -> str | None:
        preview = image.preview  # once this image's own preview task has run
        return preview.url if preview else None


class ReferenceSetSerializer(ScopedModelSerializer):
    image_count = serializers.SerializerMethodField()
    video_count = serializers.SerializerMethodField()

    class Meta:
        model = ReferenceSet
        fields = ["id", "project", "name", "description", "media_kind", "image_count",
                  "video_count", "created_at"]
        read_only_fields = ["id", "media_kind", "image_count", "video_count", "created_at"]

    def get_image_count(self, reference_set: ReferenceSet) -> int:
        return counted_or_count(reference_set, "counted_images", "images")

    def get_video_count(self, reference_set: ReferenceSet) -> int:
        return counted_or_count(reference_set, "counted_videos", "videos")


class GenerationFailureSerializer(ScopedModelSerializer):
    prompt_text = serializers.CharField(source="prompt.text")

    class Meta:
        model = GenerationFailure
        fields = ["prompt", "prompt_text", "seed", "error", "attempts", "updated_at"]


class ImagesUploadSerializer(RejectUnknownFields):
    archive = serializers.FileField(help_text="Zip of images; may contain manifest.csv/jsonl.")
    manifest = serializers.FileField(
        required=False, help_text="CSV or JSONL with columns file, prompt (or prompt_id), seed."
    )
    skip_existing = serializers.BooleanField(default=False)


class ArchiveUploadSerializer(RejectUnknownFields):
    archive = serializers.FileField(help_text="Zip of images.")


class GenModelViewSet(DeletionRules, ProjectScopedViewSet):
    serializer_class = GenModelSerializer
    deletion_kind = "model"
    filterset_fields = ["project", "name"]

    def base_queryset(self) -> QuerySet[GenModel]:
        return GenModel.objects.order_by("id")


class CheckpointViewSet(DeletionRules, ProjectScopedViewSet):
    serializer_class = CheckpointSerializer
    deletion_kind = "checkpoint"
    project_path = "model__project_id"
    filterset_fields = ["model", "generator", "model__project"]

    def base_queryset(self) -> QuerySet[Checkpoint]:
        return Checkpoint.objects.select_related("model").order_by("model_id", "training_step")


class GenerationRunViewSet(DeletionRules, ProjectScopedViewSet):
    serializer_class = GenerationRunSerializer
    deletion_kind = "run"
    project_path = "checkpoint__model__project_id"
    filterset_fields = ["project", "checkpoint", "prompt_set", "status", "source"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def base_queryset(self) -> QuerySet[GenerationRun]:
        return (GenerationRun.objects.select_related("checkpoint__model")
                .annotate(counted_images=_count_of(Image.objects.all(), "run_id"))
                .order_by("id"))

    def perform_create(self, serializer: GenerationRunSerializer) -> None:
        data = serializer.validated_data
        require_project_role(
            request=self.request,
            project_id=data["checkpoint"].model.project_id,
            roles=self.write_roles,
        )
        archive, manifest = data.get("archive"), data.get("manifest")
        run_source = data.get("source", RunSource.IMPORTED)

        def create() -> GenerationRun:
            return run_create(
                created_by=self.request.user, source=run_source,
                **{k: v for k, v in data.items() if k not in ("source", "archive", "manifest")},
            )

        if archive is None:
            if manifest is not None:
                raise serializers.ValidationError({"manifest": "Only with `archive`."})
            serializer.instance = create()
            return
        if run_source != RunSource.IMPORTED:
            raise serializers.ValidationError({"archive": "Only imported runs take images."})
        with ExitStack() as stack:
            path = stack.enter_context(uploaded_file_path(archive))
            source = stack.enter_context(
                open_source(path, max_total_bytes=settings.EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES))
            serializer.instance, serializer.context[IMPORT_REPORT] = run_create_and_import(
                create=create, source=source,
                manifest=manifest.read() if manifest else None,
                manifest_name=manifest.name if manifest else "manifest.csv")

    @extend_schema(request=None, responses={202: GenerationRunSerializer})
    @action(detail=True, methods=["post"])
    def launch(self, request: Request, pk: str | None = None) -> Response:
        """Queue the run's missing (prompt, seed) items for generation on the gpu queue.

        Launching a finished or half-finished run again only produces what is missing.
        """
        run = self.get_object()
        require_project_role(request=request, project_id=run.project_id, roles=self.write_roles)
        generation_launch(run=run)
        return Response(GenerationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=GenerationFailureSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)  # the whole list, not pages
    def failures(self, request: Request, pk: str | None = None) -> Response:
        """Items the generator could not produce, with the error each gave."""
        run = self.get_object()
        rows = run.failures.select_related("prompt").order_by("prompt__position", "seed")
        return Response(GenerationFailureSerializer(rows, many=True).data)

    @extend_schema(request=ImagesUploadSerializer, responses={201: ImportReportSerializer})
    @action(detail=True, methods=["post"], url_path="import-images",
            parser_classes=[MultiPartParser, FormParser])
    def import_images(self, request: Request, pk: str | None = None) -> Response:
        """Attach images from an uploaded zip and manifest: all of them, or none."""
        run = self.get_object()
        require_project_role(request=request, project_id=run.project_id, roles=self.write_roles)
        form = ImagesUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        manifest = form.validated_data.get("manifest")
        with ExitStack() as stack:
            path = stack.enter_context(uploaded_file_path(form.validated_data["archive"]))
            source = stack.enter_context(
                open_source(path, max_total_bytes=settings.EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES)
            )
            report = run_images_import(
                run=run,
                source=source,
                manifest=manifest.read() if manifest else None,
                manifest_name=manifest.name if manifest else "manifest.csv",
                skip_existing=form.validated_data["skip_existing"],
            )
        return Response(ImportReportSerializer(report).data, status=status.HTTP_201_CREATED)


class ImageViewSet(ProjectScopedReadOnlyViewSet):
    serializer_class = ImageSerializer
    project_path = "run__project_id"
    filterset_fields = ["run", "prompt", "seed", "run__checkpoint", "prompt__category"]

    def base_queryset(self) -> QuerySet[Image]:
        return Image.objects.select_related("blob", "video").order_by("id")


class ReferenceSetViewSet(DeletionRules, ProjectScopedViewSet):
    serializer_class = ReferenceSetSerializer
    deletion_kind = "reference-set"
    filterset_fields = ["project", "name"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def base_queryset(self) -> QuerySet[ReferenceSet]:
        return ReferenceSet.objects.annotate(
            counted_images=_count_of(ReferenceSet.images.through.objects.all(),
                                     "referenceset_id"),
            counted_videos=_count_of(ReferenceSet.videos.through.objects.all(),
                                     "referenceset_id"),
        ).order_by("id")

    @extend_schema(request=ArchiveUploadSerializer, responses={201: ImportReportSerializer})
    @action(detail=True, methods=["post"], url_path="import-images",
            parser_classes=[MultiPartParser, FormParser])
    def import_images(self, request: Request, pk: str | None = None) -> Response:
        """Add the images, or the videos, of an uploaded zip to this reference set, atomically
        (a set holds one kind: images for FID/KID/CMMD, videos for FVD)."""
        reference_set = self.get_object()
        require_project_role(
            request=request, project_id=reference_set.project_id, roles=self.write_roles
        )
        form = ArchiveUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)  # a file, not a text field of that name
        with uploaded_file_path(form.validated_data["archive"]) as path, open_source(
            path, max_total_bytes=settings.EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES
        ) as source:
            report = reference_set_import(reference_set=reference_set, source=source)
        return Response(ImportReportSerializer(report).data, status=status.HTTP_201_CREATED)
