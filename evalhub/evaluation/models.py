"""Metric results: run-level values, per-prompt breakdowns, per-image values, pair distances.

Every value records the backbone, its weights' sha256 and whether the weights were real
(``calibrated``); values from random weights are shown and exported as uncalibrated.
"""

from django.db import models


class MetricName(models.TextChoices):
    FID = "fid", "FID"
    KID = "kid", "KID"
    CLIP_SCORE = "clip_score", "CLIP-score"
    CMMD = "cmmd", "CMMD"
    LPIPS_DIVERSITY = "lpips_diversity", "LPIPS diversity"
    LPIPS = "lpips", "LPIPS A-vs-B distance"


class Provenance(models.Model):
    """Fields that make a metric value reproducible."""

    backbone_id = models.CharField(max_length=200)
    weights_sha256 = models.CharField(max_length=100)
    calibrated = models.BooleanField(
        help_text="False when computed with random weights: the number is uncalibrated."
    )
    library_versions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class RunMetric(Provenance):
    run = models.ForeignKey("runs.GenerationRun", on_delete=models.CASCADE,
                            related_name="metrics")
    metric = models.CharField(max_length=30, choices=MetricName.choices)
    reference_set = models.ForeignKey("runs.ReferenceSet", on_delete=models.CASCADE, null=True,
                                      blank=True)
    value = models.FloatField()
    std = models.FloatField(null=True, blank=True, help_text="e.g. KID's std over subsets")
    n_images = models.PositiveIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["run", "metric", "reference_set", "backbone_id"], name="unique_run_metric",
            nulls_distinct=False)]

    def __str__(self) -> str:
        flag = "" if self.calibrated else " (uncalibrated)"
        return f"{self.run} {self.metric}={self.value:.4g}{flag}"


class PromptMetric(Provenance):
    """A run's metric restricted to one prompt (e.g. mean CLIP-score, LPIPS diversity)."""

    run = models.ForeignKey("runs.GenerationRun", on_delete=models.CASCADE,
                            related_name="prompt_metrics")
    prompt = models.ForeignKey("prompts.Prompt", on_delete=models.CASCADE)
    metric = models.CharField(max_length=30, choices=MetricName.choices)
    value = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["run", "prompt", "metric", "backbone_id"], name="unique_prompt_metric")]

    def __str__(self) -> str:
        return f"{self.run} prompt {self.prompt_id} {self.metric}={self.value:.4g}"


class ImageMetric(Provenance):
    """A per-image value, e.g. the CLIP-score of an image against its prompt."""

    image = models.ForeignKey("runs.Image", on_delete=models.CASCADE, related_name="metrics")
    metric = models.CharField(max_length=30, choices=MetricName.choices)
    value = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["image", "metric", "backbone_id"], name="unique_image_metric")]

    def __str__(self) -> str:
        return f"image {self.image_id} {self.metric}={self.value:.4g}"


class PairMetric(Provenance):
    """A distance between two images, e.g. LPIPS between two runs' answers to one prompt."""

    image_a = models.ForeignKey("runs.Image", on_delete=models.CASCADE, related_name="+")
    image_b = models.ForeignKey("runs.Image", on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=30, choices=MetricName.choices)
    value = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["image_a", "image_b", "metric", "backbone_id"], name="unique_pair_metric")]

    def __str__(self) -> str:
        return f"{self.image_a_id}~{self.image_b_id} {self.metric}={self.value:.4g}"
