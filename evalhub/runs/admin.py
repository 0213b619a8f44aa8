from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from evalhub.blobs.views import display_url
from evalhub.core.admin import NameRuleAdmin, UniqueNamesForm
from evalhub.core.errors import EvalHubError
from evalhub.projects.admin import ProjectFixedAdmin
from evalhub.projects.references import check_same_project
from evalhub.runs.models import (
    Checkpoint,
    GenerationFailure,
    GenerationRun,
    GenModel,
    Image,
    ReferenceSet,
)
from evalhub.runs.services import (
    CHECKPOINT_FIXED_FIELDS,
    RUN_FIXED_FIELDS,
    checkpoint_has_outputs,
)


class CheckpointInline(NameRuleAdmin, admin.TabularInline):
    model = Checkpoint
    extra = 0
    fields = ["name", "training_step", "generator", "weights_uri"]
    # What outputs were made with is changed (while no run has outputs) on the checkpoint's
    # own page, which applies the rule; the model's page cannot tell the checkpoints apart.
    readonly_fields = ["generator", "weights_uri"]
    show_change_link = True


@admin.register(GenModel)
class GenModelAdmin(ProjectFixedAdmin):
    list_display = ["name", "project", "created_at"]
    list_filter = ["project"]
    search_fields = ["name"]
    inlines = [CheckpointInline]


class CheckpointAdminForm(UniqueNamesForm):
    def clean_model(self) -> GenModel:
        # The API's rule (check_same_project): a checkpoint may move to another model of its
        # project before it has outputs, never to another project's.
        model = self.cleaned_data["model"]
        if self.instance.pk is not None:
            try:
                check_same_project(self.instance.model.project_id, model=model)
            except EvalHubError as exc:
                raise forms.ValidationError(
                    "A checkpoint stays in its project: choose a model of the same "
                    "project.") from exc
        return model


@admin.register(Checkpoint)
class CheckpointAdmin(NameRuleAdmin, admin.ModelAdmin):
    form = CheckpointAdminForm
    list_display = ["name", "model", "training_step", "generator"]
    list_filter = ["generator", "model__project"]
    search_fields = ["name", "model__name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Checkpoint | None = None
                            ) -> list[str]:
        # The API's rule (runs.services.checkpoint_change_check): fixed once used.
        if obj is not None and checkpoint_has_outputs(obj):
            return [*super().get_readonly_fields(request, obj), *CHECKPOINT_FIXED_FIELDS]
        return list(super().get_readonly_fields(request, obj))


@admin.register(GenerationRun)
class GenerationRunAdmin(ProjectFixedAdmin):
    list_display = ["name", "checkpoint", "prompt_set", "source", "status", "progress",
                    "items_failed", "created_at"]
    list_filter = ["status", "source", "project"]
    search_fields = ["name"]
    readonly_fields = ["items_total", "items_done", "items_failed", "items_done_at_launch",
                       "started_at", "finished_at", "error"]

    def get_readonly_fields(self, request: HttpRequest, obj: GenerationRun | None = None
                            ) -> list[str]:
        # The API's rule (runs.services.run_change_check): fixed once the run exists; its
        # project from ProjectFixedAdmin.
        fixed = RUN_FIXED_FIELDS if obj is not None else ()
        return [*super().get_readonly_fields(request, obj), *fixed]

    @admin.display(description="progress")
    def progress(self, run: GenerationRun) -> str:
        return f"{run.items_done}/{run.items_total}"

# What an image is: the run's answer to (prompt, seed), in these files. The API never changes
# an image (its serializer is read-only): another run or prompt would count the image, and the
# votes cast on it, for what it was not made by or from.
IMAGE_FIXED_FIELDS = ("run", "prompt", "seed", "blob", "video")

THUMBNAIL_HEIGHT = 64  # px; the width follows the image's aspect ratio


def thumbnail(image: Image | None, project_id: int | None = None) -> SafeString | str:
    """An ``<img>`` of ``image``'s display derivative, ``THUMBNAIL_HEIGHT`` pixels high, from
    the access-checked media view (superusers receive display derivatives: blobs/access.py),
    under its name in ``project_id`` (default: the image's run's project; blobs/names.py).
    A height attribute, not a style: the Content-Security-Policy admits no inline style."""
    if image is None:
        return "-"
    return format_html('<img src="{}" alt="image {}" height="{}" loading="lazy">',
                       display_url(image.blob, project_id or image.run.project_id), image.pk,
                       THUMBNAIL_HEIGHT)


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "image_thumbnail", "run", "prompt", "seed", "blob", "elapsed_s"]
    list_filter = ["run__project", "run"]
    list_select_related = ["run", "prompt", "blob"]
    raw_id_fields = ["prompt", "blob", "run"]
    readonly_fields = ["image_thumbnail"]

    def get_readonly_fields(self, request: HttpRequest, obj: Image | None = None
                            ) -> list[str]:
        fixed = IMAGE_FIXED_FIELDS if obj is not None else ()
        return [*super().get_readonly_fields(request, obj), *fixed]

    @admin.display(description="image")
    def image_thumbnail(self, image: Image) -> SafeString | str:
        return thumbnail(image)


@admin.register(GenerationFailure)
class GenerationFailureAdmin(admin.ModelAdmin):
    list_display = ["run", "prompt", "seed", "attempts", "updated_at", "error"]
    list_filter = ["run"]


@admin.register(ReferenceSet)
class ReferenceSetAdmin(ProjectFixedAdmin):
    list_display = ["name", "project", "created_at"]
    list_filter = ["project"]
    filter_horizontal = ["images"]
