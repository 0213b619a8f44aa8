"""Reads of the campaign pages: live building progress, progress per annotator, gold pairs,
reports of broken images."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from django.db.models import Count, Max, Q, QuerySet

from evalhub.campaigns.building.images import campaign_images_preparing
from evalhub.campaigns.building.report import near_duplicate_filter, skipped
from evalhub.campaigns.models import (
    Campaign,
    CampaignStatus,
    ComparisonTask,
    ImageReport,
    JudgeKind,
    Judgment,
)
from evalhub.campaigns.selectors import campaign_progress

# Statuses after which building is over: the page stops polling.
BUILT = {CampaignStatus.DRAFT, CampaignStatus.ACTIVE, CampaignStatus.PAUSED,
         CampaignStatus.CLOSED, CampaignStatus.FAILED}


@dataclass(frozen=True)
class LiveProgress:
    """What the campaign page polls (``campaign-manage-progress``).

    ``votes_done`` / ``votes_needed``: human judgments counted on non-gold pairs over the
    judgments they need (``judgments_per_pair`` each); ``images_done`` / ``images_total``: large
    images whose tiles are built and videos whose renditions are written (a video campaign's
    are its videos: ``building/images.py``), when any are still being prepared (else both 0).
    ``final``: building is over and every image is ready, so nothing will change but votes.
    ``skipped_near_identical`` (pairs closer than the LPIPS threshold, identical ones
    included) and ``skipped_identical`` (pairs or K-sets in which two runs made the very same
    file) are the build report's counts; ``not_asked`` says both in words ("8 sets not asked:
    two runs made the very same file"; "" when nothing was skipped: building/report.py).
    ``near_duplicate_filter``: what the LPIPS filter did ("4 pairs skipped (LPIPS,
    uncalibrated)", "not applied: weights missing", "not run yet" before the build; "" when
    the campaign has no LPIPS threshold).
    """

    status: str
    tasks: int
    tasks_complete: int
    votes_done: int
    votes_needed: int
    human_votes: int
    annotators: int
    gold_tasks: int
    images_done: int
    images_total: int
    waiting_for_runs: list[int]
    error: str
    skipped_near_identical: int
    skipped_identical: int
    not_asked: str
    near_duplicate_filter: str
    final: bool

    def as_json(self) -> dict:
        return asdict(self)


def live_progress(*, campaign: Campaign) -> LiveProgress:
    progress = campaign_progress(campaign=campaign)
    preparing = (campaign_images_preparing(campaign)
                 if campaign.status != CampaignStatus.FAILED else None)
    report = campaign.build_report or {}
    not_asked = skipped(report)
    return LiveProgress(
        status=campaign.status, tasks=progress["tasks"],
        tasks_complete=progress["tasks_complete"], votes_done=progress["judgments_done"],
        votes_needed=progress["judgments_needed"], human_votes=progress["human_votes"],
        annotators=progress["annotators"], gold_tasks=progress["gold_tasks"],
        images_done=preparing.done if preparing else 0,
        images_total=preparing.total if preparing else 0,
        waiting_for_runs=list(report.get("waiting_for_runs", [])),
        error=str(report.get("error", "")),
        skipped_near_identical=int(report.get("skipped_near_identical", 0) or 0),
        skipped_identical=not_asked.identical,
        not_asked=not_asked.sentence(),
        near_duplicate_filter=(near_duplicate_filter(report) or (
            "not run yet" if campaign.min_lpips_distance is not None else "")),
        final=campaign.status in BUILT and preparing is None,
    )


@dataclass(frozen=True)
class AnnotatorProgress:
    annotator_id: int
    username: str
    votes: int  # live human votes on the "overall" question, gold pairs included
    gold_votes: int
    last_vote_at: datetime | None


def annotator_progress(*, campaign: Campaign) -> list[AnnotatorProgress]:
    """One row per annotator who voted, most votes first (one grouped query)."""
    rows = (Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.HUMAN,
                                    retracted_at__isnull=True, criterion="overall")
            .values("annotator_id", "annotator__username")
            .annotate(votes=Count("id"), gold=Count("id", filter=Q(task__is_gold=True)),
                      last=Max("created_at"))
            .order_by("-votes", "annotator__username"))
    return [AnnotatorProgress(row["annotator_id"], row["annotator__username"], row["votes"],
                              row["gold"], row["last"]) for row in rows]


def gold_pairs(*, campaign: Campaign, limit: int = 200) -> list[ComparisonTask]:
    """The campaign's gold pairs with their prompt, images and vote counts (newest first)."""
    return list(ComparisonTask.objects.filter(campaign=campaign, is_gold=True)
                .select_related("prompt", "run_a", "run_b")
                .annotate(votes=Count("judgments", filter=Q(
                    judgments__retracted_at__isnull=True, judgments__criterion="overall",
                    judgments__judge_kind=JudgeKind.HUMAN)))
                .order_by("-id")[:limit])


def image_reports(*, campaign: Campaign) -> QuerySet[ImageReport]:
    """The annotators' reports of broken images and videos in the campaign (``lease_report``),
    newest first, each with its annotator, image, run and prompt (one query; slice it)."""
    return (ImageReport.objects.filter(task__campaign=campaign)
            .select_related("annotator", "image__run", "task__prompt")
            .order_by("-created_at", "-id"))


@dataclass(frozen=True)
class ReportRows:
    """The newest ``rows`` of the campaign's ``total`` reports (``rows`` is at most the cap)."""

    rows: list[ImageReport]
    total: int


def recent_reports(*, campaign: Campaign, limit: int = 100) -> ReportRows:
    """The newest ``limit`` reports and how many there are (two queries)."""
    reports = image_reports(campaign=campaign)
    rows = list(reports[:limit])
    total = len(rows) if len(rows) < limit else reports.count()
    return ReportRows(rows, total)
