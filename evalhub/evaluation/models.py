"""Metric results: run-level values, per-prompt breakdowns, per-image values, pair distances.

Every value records the backbone, its weights' sha256 and whether the weights were real
(``calibrated``); values from random weights are shown and exported as uncalibrated.
"""

import json
from collections.abc import Iterable

from django.conf import settings
from django.db import models


class MetricName(models.TextChoices):
    FID = "fid", "FID"
    KID = "kid", "KID"
    CLIP_SCORE = "clip_score", "CLIP-score"
    CMMD = "cmmd", "CMMD"
    LPIPS_DIVERSITY = "lpips_diversity", "LPIPS diversity"
    LPIPS = "lpips", "LPIPS A-vs-B distance"
    VIDEO_CLIP_SCORE = "video_clip_score", "CLIP-score over video frames"
    TEMPORAL_CONSISTENCY = "temporal_consistency", "Temporal consistency (CLIP)"
    FLICKER = "flicker", "Flicker (LPIPS of consecutive frames)"
    FVD = "fvd", "FVD"


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


#: What a run-level value was computed with besides its reference set and backbone (the
#: ``details`` the finalize step stores): values that differ in any of these are not comparable
#: (a 64-d FID beside 2048-d ones, KID asked over subsets of 5 beside 1000, a rank-deficient
#: FID, a video CLIP score over 2 sampled frames beside 16, flicker at 31 px beside 256).
#: KID's is the subset size *asked*: the size used is capped by the smaller set, and the
#: unbiased estimate's expectation does not depend on it, so a run of 20 images and one of 30,
#: both asked for 1000, share a column.
COMPARABILITY_DETAILS = ("dim", "resize", "subset_size_asked", "estimator", "clip_frames",
                         "video_frames", "flicker_short_side", "rank_deficient")


def computed_as(details: dict | None) -> str:
    """The :data:`COMPARABILITY_DETAILS` of a value's ``details`` as one canonical string
    (``"dim=64;subset_size=5"``; empty for none): with the run, metric, reference set and
    backbone it names one stored value, so a value computed another way is kept beside it
    instead of overwriting it."""
    details = details or {}
    return ";".join(f"{key}={json.dumps(details[key], sort_keys=True)}"
                    for key in COMPARABILITY_DETAILS if details.get(key) is not None)


#: How each of the :data:`COMPARABILITY_DETAILS` reads in :func:`computed_with`.
_SETTING_WORDS = {
    "dim": lambda v: f"{v}-d features",
    "resize": lambda v: f"{v} resize",
    "subset_size_asked": lambda v: f"KID subsets of {v}",
    "estimator": lambda v: ("reference (V-statistic) estimator" if v == "reference"
                            else f"{v} estimator"),
    "clip_frames": lambda v: f"clips of {v} frames",
    "video_frames": lambda v: f"{v} sampled frames",
    "flicker_short_side": lambda v: f"frames at {v} px on the shorter side",
    "rank_deficient": lambda v: ("rank-deficient (fewer images than feature dimensions)"
                                 if v else "full rank"),
}


def computed_with(*, reference_set: str | None, backbone_id: str, computed_as: str) -> str:
    """How a run-level value was computed, in words a scientist reads: its reference set (by
    name), its backbone and its :func:`computed_as` settings, e.g. ``reference set “coco” ·
    backbone inception-v3-fid/pool3 · 64-d features, antialias resize``.

    The one description of a way of computing: pages, the leaderboard's JSON and the
    ``leaderboard`` command all show this text. A setting without words of its own reads
    ``key=value``.
    """
    settings_words = []
    for part in filter(None, computed_as.split(";")):
        key, _, raw = part.partition("=")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        words = _SETTING_WORDS.get(key)
        settings_words.append(words(value) if words else f"{key}={value}")
    parts = [f"reference set “{reference_set}”"] if reference_set else []
    if backbone_id:
        parts.append(f"backbone {backbone_id}")
    if settings_words:
        parts.append(", ".join(settings_words))
    return " · ".join(parts)


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
    computed_as = models.CharField(
        max_length=200, blank=True, default="",
        help_text="The settings that make values comparable (feature dimension, resize, KID "
                  "subset size, ...), from details; a value computed another way is kept "
                  "beside this one.")

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["run", "metric", "reference_set", "backbone_id", "computed_as"],
            name="unique_run_metric_computed_as", nulls_distinct=False)]

    def __str__(self) -> str:
        flag = "" if self.calibrated else " (uncalibrated)"
        return f"{self.run} {self.metric}={self.value:.4g}{flag}"

    def save(self, *args, **kwargs) -> None:
        self.computed_as = computed_as(self.details)
        super().save(*args, **kwargs)


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


# --- Computation: feature cache, reference statistics, jobs and shards ---------------------


class FeatureCacheEntry(models.Model):
    """One image's feature vector for one backbone (raw little-endian float32, ``dim`` values).

    Keyed by the image bytes' sha256 and the backbone id, which names architecture, layer,
    resize mode and weights (random weights carry a ``+random`` suffix), so features are
    computed once and shared by runs, reference sets, metrics and jobs.
    """

    sha256 = models.CharField(max_length=64)
    backbone_id = models.CharField(max_length=200)
    dim = models.PositiveIntegerField()
    features = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sha256", "backbone_id"],
                                               name="unique_feature_cache_entry")]
        verbose_name_plural = "feature cache entries"

    def __str__(self) -> str:
        return f"{self.sha256[:12]} {self.backbone_id} ({self.dim}-d)"


class ReferenceStats(models.Model):
    """FID (InceptionV3) or FVD (I3D) Gaussian statistics (``GaussianStats.to_bytes``) of a
    reference set, per backbone.

    ``images_digest`` is the sha256 of the sorted image (or video) sha256s: when the reference
    set's items change, the row is stale and is recomputed (from cached features).
    """

    reference_set = models.ForeignKey("runs.ReferenceSet", on_delete=models.CASCADE,
                                      related_name="feature_stats")
    backbone_id = models.CharField(max_length=200)
    weights_sha256 = models.CharField(max_length=100)
    calibrated = models.BooleanField()
    library_versions = models.JSONField(default=dict, blank=True)
    images_digest = models.CharField(max_length=64)
    n = models.PositiveIntegerField()
    dim = models.PositiveIntegerField()
    stats = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["reference_set", "backbone_id"],
                                               name="unique_reference_stats")]
        verbose_name_plural = "reference statistics"

    def __str__(self) -> str:
        return f"{self.reference_set} {self.backbone_id} n={self.n}"


class JobStatus(models.TextChoices):
    #: Created over a run that is still generating: it has no shards yet, and starts (its
    #: shards made and queued) when the run closes (evaluation/services.py).
    WAITING = "waiting", "Waiting for its run"
    QUEUED = "queued"
    RUNNING = "running"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    PARTIAL = "partial", "Completed, some metrics failed"
    FAILED = "failed"


FINISHED_JOB_STATUSES = (JobStatus.COMPLETED, JobStatus.PARTIAL, JobStatus.FAILED)


def images_of_done_shards(shards: Iterable[tuple[str, list]]) -> int:
    """The images (or videos, and reference ones) of the done shards among ``(status,
    item_ids)`` rows: what a metric job's progress counts as done."""
    return sum(len(ids) for status, ids in shards if status == ShardStatus.DONE)


class MetricJob(models.Model):
    """Computing a set of metrics for one run, split into shards that workers take in parallel.

    ``metric_errors`` maps a metric to the reason it could not be computed (e.g. too few
    reference images for FID); the other metrics are still computed (status ``partial``).
    ``results`` summarises the RunMetric values written by the finalize step.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE,
                                related_name="metric_jobs")
    run = models.ForeignKey("runs.GenerationRun", on_delete=models.CASCADE,
                            related_name="metric_jobs")
    metrics = models.JSONField(help_text='e.g. ["fid", "kid", "clip_score"]')
    reference_set = models.ForeignKey("runs.ReferenceSet", on_delete=models.SET_NULL,
                                      null=True, blank=True, related_name="metric_jobs")
    options = models.JSONField(default=dict, blank=True)
    reference_digest = models.CharField(
        max_length=64, blank=True,
        help_text="sha256 of the sorted sha256s of the reference images the job uses")
    status = models.CharField(max_length=20, choices=JobStatus.choices,
                              default=JobStatus.QUEUED, db_index=True)
    shards_total = models.PositiveIntegerField(default=0)
    shards_done = models.PositiveIntegerField(default=0)
    images_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    metric_errors = models.JSONField(default=dict, blank=True)
    results = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # ``db_default``: processes of the release before it insert jobs without it (deploys).
    images_done_at_resume = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Images of the shards done when the job was last "
        "resumed: its images per second count only those done since.")
    # Its own column, not a wording of ``error``: behaviour keyed on a message changes when
    # the message does, and a column can be filtered on. ``db_default`` as above (deploys).
    not_queued = models.BooleanField(
        default=False, db_default=False, help_text="True while the job's shards (or finalize "
        "step) did not reach the task queue (the broker was down): nothing computes it until "
        "a resume, or a create of the same job, queues them; its error says how.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"metrics {','.join(self.metrics)} of {self.run} ({self.status})"

    def images_done(self) -> int:
        """Images (or videos, and reference ones) of the shards done: what the job's progress
        counts (:func:`images_of_done_shards`)."""
        return images_of_done_shards(self.shards.filter(status=ShardStatus.DONE)
                                     .values_list("status", "item_ids"))

    @property
    def progress(self) -> float:
        return self.shards_done / self.shards_total if self.shards_total else 0.0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_JOB_STATUSES


class ShardKind(models.TextChoices):
    RUN = "run", "run images"
    REFERENCE = "reference", "reference images"


class ShardStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class MetricShard(models.Model):
    """A slice of a job's images. ``item_ids`` are Image ids (run shards) or, for reference
    shards, ImageBlob ids (an image reference set) or VideoBlob ids (a video reference set,
    FVD). ``fid_stats`` holds the shard's partial ``GaussianStats`` bytes: InceptionV3's for
    FID, I3D's for FVD (a job has one reference set, of one kind, so never both); ``payload``
    the backbones used and per-prompt values (LPIPS diversity)."""

    job = models.ForeignKey(MetricJob, on_delete=models.CASCADE, related_name="shards")
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=ShardKind.choices)
    item_ids = models.JSONField()
    status = models.CharField(max_length=20, choices=ShardStatus.choices,
                              default=ShardStatus.PENDING)
    fid_stats = models.BinaryField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    features_computed = models.PositiveIntegerField(
        default=0, help_text="feature vectors this shard had to compute (cache misses)")
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"],
                                               name="unique_metric_shard")]

    def __str__(self) -> str:
        return f"job {self.job_id} shard {self.index} ({self.kind}, {self.status})"
