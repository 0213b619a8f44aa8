from __future__ import annotations

from contextlib import ExitStack

from django.conf import settings
from django.db.models import Count, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from evalhub.blobs.sources import open_source
from evalhub.core.limits import MAX_TEXT_CHARS
from evalhub.core.serializers import (
    ReadForPage,
    RejectUnknownFields,
    counted_or_count,
    read_for,
)
from evalhub.core.uploads import uploaded_file_path
from evalhub.projects.api_base import ProjectScopedReadOnlyViewSet, ProjectScopedViewSet
from evalhub.projects.models import Project
from evalhub.projects.permissions import require_project_role
from evalhub.projects.references import ScopedModelSerializer, ScopedPrimaryKeyRelatedField
from evalhub.prompts.models import Prompt, PromptSet
from evalhub.prompts.parsers import FORMATS, detect_format
from evalhub.prompts.selectors import prompt_set_categories
from evalhub.prompts.services import prompt_set_import
from evalhub.workspace.deletion import DeletionRules


class PromptSetSerializer(ScopedModelSerializer):
    # The prompts' count: the list's queryset counts them for every set in its one query
    # (``PromptSetViewSet.base_queryset``); a set just created or imported is read here.
    prompt_count = serializers.SerializerMethodField()
    categories = serializers.SerializerMethodField()

    class Meta:
        model = PromptSet
        fields = ["id", "project", "name", "description", "created_at", "prompt_count",
                  "categories"]
        read_only_fields = ["id", "created_at"]
        list_serializer_class = ReadForPage

    def get_prompt_count(self, prompt_set: PromptSet) -> int:
        return counted_or_count(prompt_set, "counted_prompts", "prompts")

    @staticmethod
    def read_page(ids: list[int]) -> dict[int, list[str]]:
        """The categories of a page of prompt sets, in one query."""
        return prompt_set_categories(ids)

    def get_categories(self, prompt_set: PromptSet) -> list[str]:
        return read_for(self, prompt_set)


class PromptSerializer(ScopedModelSerializer):
    source_image_sha256 = serializers.CharField(
        source="source_image.sha256", read_only=True, default=None, allow_null=True,
        help_text="The source image; for a source video, its poster (the middle frame).",
    )
    source_video_sha256 = serializers.CharField(
        source="source_video.sha256", read_only=True, default=None, allow_null=True,
        help_text="The source video of a video-editing prompt; null otherwise.",
    )

    class Meta:
        model = Prompt
        fields = ["id", "prompt_set", "position", "text", "category", "tags", "metadata",
                  "source_image_sha256", "source_video_sha256"]
        read_only_fields = fields


class PromptSetImportSerializer(RejectUnknownFields):
    project = ScopedPrimaryKeyRelatedField(queryset=Project.objects.all())
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, default="", allow_blank=True,
                                        max_length=MAX_TEXT_CHARS)
    file = serializers.FileField(help_text="CSV, JSONL or text (one prompt a line).")
    format = serializers.ChoiceField(choices=FORMATS, required=False)
    images = serializers.FileField(
        required=False, help_text="Zip of the source images or videos named by the "
        "source_image (or source_video) column."
    )


class PromptSetViewSet(DeletionRules, ProjectScopedViewSet):
    serializer_class = PromptSetSerializer
    deletion_kind = "prompt-set"
    filterset_fields = ["project", "name"]

    def base_queryset(self) -> QuerySet[PromptSet]:
        return PromptSet.objects.annotate(counted_prompts=Count("prompts")).order_by("id")

    @extend_schema(request=PromptSetImportSerializer, responses={201: PromptSetSerializer})
    @action(detail=False, methods=["post"], url_path="import",
            parser_classes=[MultiPartParser, FormParser])
    def import_file(self, request: Request) -> Response:
        """Create a prompt set from an uploaded file. All prompts are imported, or none."""
        form = PromptSetImportSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        require_project_role(request=request, project_id=data["project"].id,
                             roles=self.write_roles)
        upload = data["file"]
        with ExitStack() as stack:
            images = None
            if data.get("images") is not None:
                path = stack.enter_context(uploaded_file_path(data["images"]))
                images = stack.enter_context(
                    open_source(path, max_total_bytes=settings.EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES)
                )
            prompt_set = prompt_set_import(
                project=data["project"],
                name=data["name"],
                description=data["description"],
                data=upload.read(),
                fmt=data.get("format") or detect_format(upload.name or ""),
                created_by=request.user,
                images=images,
            )
        return Response(PromptSetSerializer(prompt_set).data, status=status.HTTP_201_CREATED)


class PromptViewSet(ProjectScopedReadOnlyViewSet):
    serializer_class = PromptSerializer
    project_path = "prompt_set__project_id"
    filterset_fields = ["prompt_set", "category"]

    def base_queryset(self) -> QuerySet[Prompt]:
        return Prompt.objects.select_related("source_image", "source_video").order_by(
            "prompt_set_id", "position")
