"""Per-annotator quality: gold accuracy, implausibly fast votes, flags, and exclusion.

Two rules flag an annotator (a flag informs; excluding their votes is the scientist's call):

- gold: at least ``campaign.min_gold_for_flag`` gold votes and an accuracy below
  ``campaign.gold_accuracy_threshold``;
- speed: at least ``EVALHUB_FAST_VOTE_MIN_VOTES`` votes and a share of at least
  ``EVALHUB_FAST_VOTE_SHARE`` of them cast faster than ``EVALHUB_FAST_VOTE_FLOOR_MS``.

A vote's time is measured by the server: the judgment's ``created_at`` minus its lease's
``leased_at``. The page leases the next pair with each vote, so this is the time between two
votes, never less than the time the pair was on screen, and a client cannot fake it (the
``latency_ms`` the page reports is kept for analysis but trusted for nothing).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet

from evalhub.campaigns.models import AnnotatorFlag, Campaign, Criterion, JudgeKind, Judgment
from evalhub.projects.models import Membership
from evalhub.projects.references import ForeignReference


@dataclass(frozen=True)
class AnnotatorQuality:
    annotator_id: int
    username: str
    votes: int
    gold_votes: int
    gold_correct: int
    gold_accuracy: float | None
    median_latency_ms: float | None  # as the page reported it
    fast_votes: int  # votes faster than the floor, by the server's clock
    median_vote_ms: float | None  # server-measured time per vote (lease to vote)
    flags: tuple[str, ...]  # "gold", "fast": which rules flag the annotator
    excluded: bool

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class GoldStats:
    gold_votes: int
    gold_correct: int

    @property
    def accuracy(self) -> float | None:
        """Correct gold votes / gold votes; None without a gold vote."""
        return self.gold_correct / self.gold_votes if self.gold_votes else None


def human_judgments(campaign: Campaign) -> QuerySet[Judgment]:
    return Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.HUMAN,
                                   retracted_at__isnull=True)


def gold_accuracy_by_annotator(*, campaign: Campaign) -> dict[int, GoldStats]:
    """Gold votes and correct gold votes per annotator: live human votes on the overall
    criterion of gold tasks, correct when the outcome is the task's gold answer. One aggregate
    query; the one definition of gold accuracy (quality page, leaderboards, exports)."""
    rows = (human_judgments(campaign).filter(criterion=Criterion.OVERALL, task__is_gold=True)
            .values("annotator_id")
            .annotate(n=Count("id"), correct=Count("id", filter=Q(outcome=F("task__gold_answer"))))
            .values_list("annotator_id", "n", "correct"))
    return {aid: GoldStats(n, correct) for aid, n, correct in rows}


def excluded_annotator_ids(*, campaign: Campaign) -> set[int]:
    """Annotators whose votes the scientists excluded from this campaign's results."""
    return set(AnnotatorFlag.objects.filter(campaign=campaign, excluded=True)
               .values_list("annotator_id", flat=True))


def annotator_quality(*, campaign: Campaign) -> list[AnnotatorQuality]:
    """Per-annotator counts, gold accuracy (on the overall criterion), speed and flags."""
    rows = human_judgments(campaign).filter(criterion=Criterion.OVERALL).values_list(
        "annotator_id", "task__is_gold", "latency_ms", "created_at", "lease__leased_at")
    stats: dict[int, dict] = defaultdict(lambda: {"votes": 0, "latency": [], "held_ms": []})
    for annotator_id, is_gold, latency, voted_at, leased_at in rows:
        entry = stats[annotator_id]
        if not is_gold:
            entry["votes"] += 1
        if latency is not None:
            entry["latency"].append(latency)
        if leased_at is not None:
            entry["held_ms"].append((voted_at - leased_at).total_seconds() * 1000.0)
    excluded = excluded_annotator_ids(campaign=campaign)
    gold = gold_accuracy_by_annotator(campaign=campaign)
    names = dict(get_user_model().objects.filter(pk__in=stats).values_list("pk", "username"))
    floor_ms = settings.EVALHUB_FAST_VOTE_FLOOR_MS
    result = []
    for annotator_id, entry in sorted(stats.items()):
        golds = gold.get(annotator_id, GoldStats(0, 0))
        accuracy = golds.accuracy
        held = np.asarray(entry["held_ms"])
        fast = int((held < floor_ms).sum())
        flags = []
        if (accuracy is not None and golds.gold_votes >= campaign.min_gold_for_flag
                and accuracy < campaign.gold_accuracy_threshold):
            flags.append("gold")
        if (len(held) >= settings.EVALHUB_FAST_VOTE_MIN_VOTES
                and fast >= settings.EVALHUB_FAST_VOTE_SHARE * len(held)):
            flags.append("fast")
        result.append(AnnotatorQuality(
            annotator_id=annotator_id, username=names.get(annotator_id, "?"),
            votes=entry["votes"], gold_votes=golds.gold_votes, gold_correct=golds.gold_correct,
            gold_accuracy=accuracy,
            median_latency_ms=float(np.median(entry["latency"])) if entry["latency"] else None,
            fast_votes=fast, median_vote_ms=float(np.median(held)) if len(held) else None,
            flags=tuple(flags), excluded=annotator_id in excluded,
        ))
    return result


def annotator_set_excluded(*, campaign: Campaign, annotator_id: int, excluded: bool,
                           note: str = "") -> AnnotatorFlag:
    """Exclude (or re-include) a member's votes. The annotator must be a member of the
    campaign's project or have judged in the campaign (a former member); anyone else is
    refused like an id that does not exist."""
    known = (Membership.objects.filter(project_id=campaign.project_id, user_id=annotator_id)
             .exists() or Judgment.objects.filter(campaign=campaign, annotator_id=annotator_id)
             .exists())
    if not known:
        raise ForeignReference("annotator: no such object in this project.",
                               details=["annotator"])
    flag, _ = AnnotatorFlag.objects.update_or_create(
        campaign=campaign, annotator_id=annotator_id,
        defaults={"excluded": excluded, "note": note})
    return flag
