"""Rating campaigns: which pairs annotators judge, who holds which task, and every judgment."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from evalhub.projects.models import Project


class Criterion(models.TextChoices):
    OVERALL = "overall", "Which image is better overall?"
    ALIGNMENT = "alignment", "Which image matches the prompt better?"
    AESTHETICS = "aesthetics", "Which image looks better?"
    ARTIFACTS = "artifacts", "Which image has fewer artifacts?"


def criterion_questions(medium: str = "image") -> dict[str, str]:
    """Each criterion's question, worded for ``medium`` ("image" or "video")."""
    return {key: question.replace("image", medium) for key, question in Criterion.choices}


class PairPolicy(models.TextChoices):
    """Which pairs are served first: the names of ``ratings.policies.POLICIES`` (formulas there;
    figures in docs/benchmarks.md, "Vote efficiency")."""

    BALANCED = "balanced", "every pair of runs on every prompt, spread evenly"
    ACTIVE = "active", "pairs whose ratings are least certain first"
    UNCERTAINTY = "uncertainty", "pairs whose order one vote informs most"
    TOP = "top", "find the best run first, then the order"
    INFOGAIN = "infogain", "greedy information gain: the order and the best run"
    THOMPSON = "thompson", "top-two Thompson sampling: the best run only"


# What a scientist choosing a policy needs to know (the create form and the API's schema).
PAIR_POLICY_HELP = (
    "Balanced covers every pair evenly (for a preference dataset). Uncertainty and infogain "
    "order all runs with fewer votes; thompson and top find the best run with far fewer "
    "(docs/benchmarks.md, \u201cVote efficiency\u201d).")


class TaskKind(models.TextChoices):
    """What an annotator sees: two images (a pair), or K images of one prompt (best of K)."""

    PAIR = "pair", "pairs: which of two images is better"
    BEST_OF_K = "best_of_k", "best of K: pick the best of K images (optionally rank all)"


# Best-of-K campaigns show this many images at once (the grid of the rating page, keys 1..K).
MIN_K, MAX_K = 3, 6
# How long a leased task is held for its annotator (seconds): long enough to look at a 16K
# image, short enough that an abandoned lease comes back the same day.
MIN_LEASE_SECONDS, MAX_LEASE_SECONDS = 10, 24 * 3600
# How long a served task stays the annotator's before it may be served to someone else.
DEFAULT_LEASE_SECONDS = 180
# The LPIPS near-duplicate filter's largest threshold: LPIPS distances (AlexNet, v0.1) are 0
# for identical images and below 1 in practice (docs/metrics.md), so a larger threshold would
# skip every pair and leave a campaign with no task.
MAX_LPIPS_DISTANCE = 1.0


class CampaignStatus(models.TextChoices):
    """building -> draft (or straight to active) -> active <-> paused -> closed; failed builds.

    Annotators are served, and votes, undo, skip and reports accepted, only while ``active``.
    """

    BUILDING = "building"
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    CLOSED = "closed"
    FAILED = "failed"


class Outcome(models.TextChoices):
    """A judgment in canonical terms: image A is the one from the lower run id."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"
    # A best-of-K vote: the picks are in Judgment.ranking (canonical positions, best first).
    RANKED = "ranked"


class Side(models.TextChoices):
    A = "a"
    B = "b"


class Campaign(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True)
    runs = models.ManyToManyField("runs.GenerationRun", related_name="campaigns")
    prompt_category = models.CharField(
        max_length=100, blank=True, help_text="Only prompts of this category; blank for all."
    )
    criteria = models.JSONField(default=list, help_text="Criterion keys; 'overall' first.")
    judgments_per_pair = models.PositiveSmallIntegerField(default=3)
    gold_rate = models.FloatField(default=0.0, help_text="Share of served tasks that are gold.")
    gold_accuracy_threshold = models.FloatField(default=0.7)
    min_gold_for_flag = models.PositiveSmallIntegerField(default=5)
    pair_policy = models.CharField(
        max_length=20, choices=PairPolicy.choices, default=PairPolicy.BALANCED
    )
    task_kind = models.CharField(max_length=12, choices=TaskKind.choices, default=TaskKind.PAIR)
    k = models.PositiveSmallIntegerField(
        default=2, help_text="Images per task: 2 for pairs, 3 to 6 for best of K.")
    rank_all = models.BooleanField(
        default=False, help_text="Best of K: rank all K images by successive picks.")
    min_lpips_distance = models.FloatField(
        null=True, blank=True, help_text="Skip pairs closer than this LPIPS distance."
    )
    lease_seconds = models.PositiveIntegerField(default=DEFAULT_LEASE_SECONDS)
    status = models.CharField(
        max_length=20, choices=CampaignStatus.choices, default=CampaignStatus.BUILDING
    )
    build_report = models.JSONField(default=dict, blank=True)
    open_when_built = models.BooleanField(
        default=True, help_text="Open for rating once its tasks are built; else stay a draft.")
    # Who may rate (serving/leasing.py may_rate): empty, every member of the project.
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="assigned_campaigns",
        help_text="Members of the project who may rate it; empty: every member.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_campaign_name")
        ]

    def __str__(self) -> str:
        return self.name


# Votes update task, lease and judgment rows all the time; each index on them is written on
# every vote. Foreign keys whose lookups a composite index starting with the campaign already
# serves get no index of their own (db_index=False).


class ComparisonTask(models.Model):
    """Prompt + two images from two runs. Gold tasks carry a known answer.

    A best-of-K task lists its K images in :class:`TaskImage` (canonical positions 0..K-1, by
    run id); ``image_a``/``image_b`` and ``run_a``/``run_b`` are then its positions 0 and 1 and
    ``members_key`` names all K images, so the unique constraint tells K-sets apart.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="tasks",
                                 db_index=False)
    prompt = models.ForeignKey("prompts.Prompt", on_delete=models.PROTECT)
    image_a = models.ForeignKey("runs.Image", on_delete=models.PROTECT, related_name="+")
    image_b = models.ForeignKey("runs.Image", on_delete=models.PROTECT, related_name="+")
    run_a = models.ForeignKey("runs.GenerationRun", on_delete=models.PROTECT, related_name="+")
    run_b = models.ForeignKey("runs.GenerationRun", on_delete=models.PROTECT, related_name="+")
    is_gold = models.BooleanField(default=False)
    gold_answer = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    judgments_needed = models.PositiveSmallIntegerField()
    judgments_count = models.PositiveIntegerField(default=0)
    priority = models.FloatField(default=0.0, help_text="Higher is served first (active policy).")
    shuffle_key = models.FloatField(help_text="Random tie-breaker that spreads tasks evenly.")
    lpips_distance = models.FloatField(null=True, blank=True)
    members_key = models.CharField(
        max_length=120, blank=True, default="",
        help_text="Best of K: the K image ids, by position; empty for pairs.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "image_a", "image_b", "members_key"],
                                    name="unique_task_images"),
        ]
        # Serving walks these in order and stops at the first free task (LIMIT 1).
        indexes = [
            models.Index(fields=["campaign", "is_gold", "judgments_count", "shuffle_key"],
                         name="task_balanced_idx"),
            models.Index(fields=["campaign", "is_gold", "-priority", "judgments_count",
                                 "shuffle_key"], name="task_active_idx"),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} of {self.campaign_id}"


class TaskImage(models.Model):
    """One of the K images of a best-of-K task, at its canonical position (runs by id)."""

    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="members")
    position = models.PositiveSmallIntegerField()
    image = models.ForeignKey("runs.Image", on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey("runs.GenerationRun", on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["task", "position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "position"], name="one_image_per_position"),
            models.UniqueConstraint(fields=["task", "run"], name="one_image_per_run"),
        ]

    def __str__(self) -> str:
        return f"image {self.image_id} at {self.position} of task {self.task_id}"


class LeaseStatus(models.TextChoices):
    ACTIVE = "active"
    COMPLETED = "completed"
    SKIPPED = "skipped"
    EXPIRED = "expired"
    REPORTED = "reported"


class Lease(models.Model):
    """A task served to one annotator until it expires; also records which side A was shown."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="leases")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="leases",
                                 db_index=False)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                  related_name="leases")
    a_side = models.CharField(max_length=5, choices=[("left", "left"), ("right", "right")],
                              help_text="Where image A is displayed.")
    order = models.JSONField(
        null=True, blank=True,
        help_text="Best of K: the canonical position shown in each slot, left to right.")
    status = models.CharField(max_length=20, choices=LeaseStatus.choices,
                              default=LeaseStatus.ACTIVE)
    leased_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One annotator at a time per task.
            models.UniqueConstraint(fields=["task"], condition=Q(status="active"),
                                    name="one_active_lease_per_task"),
        ]
        indexes = [models.Index(fields=["campaign", "annotator", "status"],
                                name="lease_annotator_idx")]

    def __str__(self) -> str:
        return f"lease {self.pk} {self.status}"


class JudgeKind(models.TextChoices):
    HUMAN = "human"
    METRIC = "metric"


class Judgment(models.Model):
    """One answer to one criterion on one task, by a human annotator or a metric judge."""

    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="judgments")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="judgments",
                                 db_index=False)
    criterion = models.CharField(max_length=20, choices=Criterion.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    judge_kind = models.CharField(max_length=10, choices=JudgeKind.choices,
                                  default=JudgeKind.HUMAN)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  null=True, blank=True, related_name="judgments")
    metric_name = models.CharField(max_length=100, blank=True)
    metric_calibrated = models.BooleanField(
        null=True, blank=True,
        help_text="Metric judges only: False when the scores came from random weights.")
    lease = models.ForeignKey(Lease, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="judgments")
    a_side = models.CharField(max_length=5, blank=True, help_text="Where image A was shown.")
    ranking = models.JSONField(
        null=True, blank=True,
        help_text="Best of K: the picked canonical positions, best first (outcome 'ranked').")
    shown_order = models.JSONField(
        null=True, blank=True, help_text="Best of K: the lease's order (positions by slot).")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    client_id = models.UUIDField(null=True, blank=True,
                                 help_text="Client-generated vote id, for idempotency.")
    retracted_at = models.DateTimeField(null=True, blank=True, help_text="Set by undo.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client_id", "criterion"],
                                    condition=Q(client_id__isnull=False),
                                    name="idempotent_vote"),
            models.UniqueConstraint(
                fields=["task", "annotator", "criterion"],
                condition=Q(annotator__isnull=False, retracted_at__isnull=True),
                name="one_judgment_per_annotator",
            ),
            models.UniqueConstraint(
                fields=["task", "metric_name", "criterion"],
                condition=Q(judge_kind="metric"),
                name="one_judgment_per_metric",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "criterion", "judge_kind"],
                         name="judgment_stats_idx"),
            # The annotator's own vote count, returned with every vote. judge_kind is a column,
            # not part of the condition: the rating path's statements are prepared, and a
            # generic plan binds 'human' as a parameter, which cannot prove a partial index's
            # `judge_kind = 'human'` (it read the whole campaign's judgments instead).
            models.Index(fields=["campaign", "annotator", "criterion", "judge_kind"],
                         condition=Q(retracted_at__isnull=True),
                         name="judgment_rater_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} on task {self.task_id} ({self.criterion})"


class WithdrawnVote(models.Model):
    """A vote id its annotator undid before any vote under it arrived (the rating page's undo
    of a vote still on the wire: ``serving.voting.vote_undo`` found no vote). A vote arriving
    later under it is refused as undone (409 ``vote_undone``), so it never counts. Kept (a few
    rows per annotator, deleted with the campaign or the annotator)."""

    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                  related_name="+", db_index=False)  # led by the unique index
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    client_id = models.UUIDField(help_text="The vote id withdrawn.")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [models.UniqueConstraint(fields=["annotator", "client_id"],
                                               name="one_withdrawal_per_vote_id")]

    def __str__(self) -> str:
        return f"vote {self.client_id} withdrawn by {self.annotator_id}"


class AnnotatorFlag(models.Model):
    """Quality-control state of one annotator in one campaign."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="flags")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    excluded = models.BooleanField(default=False, help_text="Votes left out of statistics.")
    note = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "annotator"],
                                               name="one_flag_per_annotator")]

    def __str__(self) -> str:
        return f"{self.annotator} in {self.campaign}: excluded={self.excluded}"


class ImageReport(models.Model):
    """An annotator's report that an image is broken (does not load, corrupt, offensive)."""

    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="reports")
    image = models.ForeignKey("runs.Image", on_delete=models.CASCADE, related_name="reports",
                              null=True, blank=True, help_text="Empty for the source image.")
    side = models.CharField(max_length=10, help_text="left, right or source, as displayed.")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"report on image {self.image_id}"
