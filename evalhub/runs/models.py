from django.conf import settings
from django.db import models
from django.db.models.fields.files import FieldFile

from evalhub.core.limits import MAX_INT64
from evalhub.projects.models import Project


class GenModel(models.Model):
    """A model family (e.g. "sdxl-finetune"); its checkpoints are the things being compared."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name"]
        verbose_name = "model"
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_model")]

    def __str__(self) -> str:
        return self.name


#: A checkpoint whose outputs are imported from disk, not drawn by a generator plugin.
IMPORTED_GENERATOR = "imported"


class Checkpoint(models.Model):
    model = models.ForeignKey(GenModel, on_delete=models.CASCADE, related_name="checkpoints")
    name = models.CharField(max_length=200)
    training_step = models.BigIntegerField(null=True, blank=True)
    weights_uri = models.CharField(
        max_length=1000, blank=True, help_text="Local path, hub id or object-store URI."
    )
    generator = models.CharField(
        max_length=100,
        default=IMPORTED_GENERATOR,
        help_text="Generator plugin name (shapes, diffusers, ...) or 'imported'.",
    )
    parameters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "training_step", "name"]
        constraints = [
            models.UniqueConstraint(fields=["model", "name"], name="unique_checkpoint")
        ]

    def __str__(self) -> str:
        return f"{self.model.name}/{self.name}"


class RunStatus(models.TextChoices):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    PARTIAL = "partial", "completed with failures"
    FAILED = "failed"


#: A generated run in one of these is still being made: its outputs are not all there, and
#: what needs them all (a campaign's build, a metric job) waits for it to close.
GENERATING_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class MediaKind(models.TextChoices):
    IMAGE = "image"
    VIDEO = "video"


class RunSource(models.TextChoices):
    GENERATED = "generated"
    IMPORTED = "imported"


# A run's seeds: at most MAX_SEEDS of them, each 0..MAX_SEED (a signed 64-bit column on
# every database, and what torch.Generator.manual_seed takes).
MAX_SEEDS = 100_000
MAX_SEED = MAX_INT64


class GenerationRun(models.Model):
    """Checkpoint x prompt set x seeds x parameters, and the images that came out of it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="runs")
    prompt_set = models.ForeignKey(
        "prompts.PromptSet", on_delete=models.PROTECT, related_name="runs"
    )
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=20, choices=RunSource.choices)
    seeds = models.JSONField(default=list, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING, db_index=True
    )
    media_kind = models.CharField(
        max_length=8, choices=MediaKind.choices, default=MediaKind.IMAGE,
        help_text="What the run's outputs are: all images or all videos.",
    )
    items_total = models.PositiveIntegerField(default=0)
    items_done = models.PositiveIntegerField(default=0)
    items_failed = models.PositiveIntegerField(default=0)
    # db_default too: rows inserted by code that predates the column (a deploy's old
    # processes) get 0 from the database (migration 0004).
    items_done_at_launch = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Images stored when the run was last launched: its "
        "images per second count only those made since.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_run")]

    def __str__(self) -> str:
        return self.name

    @property
    def outputs_noun(self) -> str:
        """What the run's outputs are called on pages: "images" or "videos"."""
        return f"{self.media_kind}s"


#: When an image shows its blob's preview, as values of the image's own fields: once the
#: preview task queued for this very image has run (runs/previews.py), never because the blob
#: has a preview made for another project's image (docs/security.md, "Anonymity across
#: projects"). The one rule, read from a row by ``Image.preview`` and in SQL by
#: ``ImageQuerySet.preview_shown`` (the media view's access query, blobs/access.py).
PREVIEW_SHOWN: dict[str, object] = {"preview_ready": True}


class ImageQuerySet(models.QuerySet):
    def preview_shown(self) -> "ImageQuerySet":
        """The images that show their blob's preview (:data:`PREVIEW_SHOWN`)."""
        return self.filter(**PREVIEW_SHOWN)

    def preview_missing(self) -> "ImageQuerySet":
        """The images that show no preview: not shown yet (:data:`PREVIEW_SHOWN`), or whose
        blob has none (its task was lost); what ``manage.py make_image_previews`` repairs."""
        return self.filter(~models.Q(**PREVIEW_SHOWN) | models.Q(blob__preview=""))


class Image(models.Model):
    """One generated or imported image: a run's answer to (prompt, seed)."""

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="images")
    prompt = models.ForeignKey("prompts.Prompt", on_delete=models.PROTECT, related_name="images")
    seed = models.BigIntegerField()
    blob = models.ForeignKey("blobs.ImageBlob", on_delete=models.PROTECT, related_name="images")
    video = models.ForeignKey(
        "blobs.VideoBlob", on_delete=models.PROTECT, related_name="images", null=True,
        blank=True, help_text="Set when the output is a video; ``blob`` is then its poster.",
    )
    elapsed_s = models.FloatField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # New rows start unready (``default``, which the ORM inserts); the database's default
    # marks ready the rows inserted without the column: those stored before it, and those that
    # a deploy's old processes insert (migration 0005).
    preview_ready = models.BooleanField(
        default=False, db_default=True,
        help_text="The preview task queued for this row (runs/previews.py) has run: only then "
                  "is the blob's preview shown for it, even if another project's image of the "
                  "same bytes had one before (docs/security.md). Rows inserted without it (the "
                  "code before this column, raw SQL) count as ready.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["run", "prompt", "seed"]
        constraints = [
            models.UniqueConstraint(fields=["run", "prompt", "seed"], name="unique_run_item")
        ]

    def __str__(self) -> str:
        return f"{self.run} prompt={self.prompt_id} seed={self.seed}"

    @property
    def preview(self) -> FieldFile | None:
        """The preview shown for this image (API, gallery, media view): its blob's, once
        ``preview_ready``; None before, whether or not the blob has one already. Blobs are
        shared by every project, so showing the blob's preview as soon as it exists would
        tell an importer that other projects hold the same bytes (:data:`PREVIEW_SHOWN`)."""
        shown = all(getattr(self, field) == value for field, value in PREVIEW_SHOWN.items())
        return self.blob.preview if shown and self.blob.preview else None

    @property
    def file_key(self) -> tuple[int, int | None]:
        """The file this output is (blobs are content-addressed): two outputs with one key
        show the very same picture, or video (a video is its own file, not its poster, which
        two videos may share). Comparing such two is no judgment: campaigns never ask it."""
        return (self.blob_id, self.video_id)


class GenerationFailure(models.Model):
    """A (prompt, seed) item the generator could not produce, with the error it gave."""

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="failures")
    prompt = models.ForeignKey("prompts.Prompt", on_delete=models.CASCADE)
    seed = models.BigIntegerField()
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "prompt", "seed"], name="unique_run_failure")
        ]

    def __str__(self) -> str:
        return f"{self.run} prompt={self.prompt_id} seed={self.seed}: {self.error[:60]}"


class ReferenceSet(models.Model):
    """Real images that FID/KID/CMMD compare image runs against, or real videos that FVD
    compares video runs against: one kind per set (``media_kind``, set by its first import)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reference_sets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    media_kind = models.CharField(
        max_length=8, choices=MediaKind.choices, default=MediaKind.IMAGE,
        help_text="What the set holds: images (FID, KID, CMMD) or videos (FVD).",
    )
    images = models.ManyToManyField("blobs.ImageBlob", related_name="reference_sets", blank=True)
    videos = models.ManyToManyField("blobs.VideoBlob", related_name="reference_sets", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_reference_set")
        ]

    def __str__(self) -> str:
        return self.name
