from django.conf import settings
from django.db import models

from evalhub.projects.models import Project


class PromptSet(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompt_sets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_prompt_set_name")
        ]

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    """One prompt of a set. An editing prompt has a source: an image (``source_image``), or a
    video (``source_video``, with its poster frame in ``source_image``, as a run's video output
    keeps its poster in ``Image.blob``), so that code showing a still source keeps working and
    video-aware code reads ``source_video`` (:func:`evalhub.prompts.selectors.source_media`).
    """

    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    position = models.PositiveIntegerField(help_text="Order in the imported file, from 0.")
    text = models.TextField()
    category = models.CharField(max_length=100, blank=True, db_index=True)
    tags = models.JSONField(default=list, blank=True)
    source_image = models.ForeignKey(
        "blobs.ImageBlob",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="Input image for editing / image-to-image prompts; for a source video, its "
                  "poster (middle frame).",
    )
    source_video = models.ForeignKey(
        "blobs.VideoBlob",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="source_of",
        help_text="Input video for video-editing prompts (source_image is then its poster).",
    )
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["prompt_set", "position"]
        constraints = [
            models.UniqueConstraint(fields=["prompt_set", "text"], name="unique_prompt_text"),
            models.UniqueConstraint(
                fields=["prompt_set", "position"], name="unique_prompt_position"
            ),
        ]

    def __str__(self) -> str:
        return self.text[:80]
