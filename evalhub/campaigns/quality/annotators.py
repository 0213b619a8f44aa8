"""Per-annotator quality: gold accuracy, flags from it, and excluding an annotator's votes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from evalhub.campaigns.models import AnnotatorFlag, Campaign, Criterion, JudgeKind, Judgment


@dataclass(frozen=True)
class AnnotatorQuality:
    annotator_id: int
    username: str
    votes: int
    gold_votes: int
    gold_correct: int
    gold_accuracy: float | None
    median_latency_ms: float | None
    flagged: bool  # gold accuracy below the campaign's threshold (with enough gold votes)
    excluded: bool


def human_judgments(campaign: Campaign) -> QuerySet[Judgment]:
    return Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.HUMAN,
                                   retracted_at__isnull=True)


def annotator_quality(*, campaign: Campaign) -> list[AnnotatorQuality]:
    """Per-annotator counts, gold accuracy (on the overall criterion) and latency."""
    rows = human_judgments(campaign).filter(criterion=Criterion.OVERALL).values_list(
        "annotator_id", "outcome", "task__is_gold", "task__gold_answer", "latency_ms")
    stats: dict[int, dict] = defaultdict(lambda: {"votes": 0, "gold": 0, "correct": 0,
                                                  "latency": []})
    for annotator_id, outcome, is_gold, answer, latency in rows:
        entry = stats[annotator_id]
        if is_gold:
            entry["gold"] += 1
            entry["correct"] += outcome == answer
        else:
            entry["votes"] += 1
        if latency is not None:
            entry["latency"].append(latency)
    excluded = set(AnnotatorFlag.objects.filter(campaign=campaign, excluded=True)
                   .values_list("annotator_id", flat=True))
    names = dict(get_user_model().objects.filter(pk__in=stats).values_list("pk", "username"))
    result = []
    for annotator_id, entry in sorted(stats.items()):
        accuracy = entry["correct"] / entry["gold"] if entry["gold"] else None
        flagged = (accuracy is not None and entry["gold"] >= campaign.min_gold_for_flag
                   and accuracy < campaign.gold_accuracy_threshold)
        result.append(AnnotatorQuality(
            annotator_id=annotator_id, username=names.get(annotator_id, "?"),
            votes=entry["votes"], gold_votes=entry["gold"], gold_correct=entry["correct"],
            gold_accuracy=accuracy,
            median_latency_ms=float(np.median(entry["latency"])) if entry["latency"] else None,
            flagged=flagged, excluded=annotator_id in excluded,
        ))
    return result


def annotator_set_excluded(*, campaign: Campaign, annotator_id: int, excluded: bool,
                           note: str = "") -> AnnotatorFlag:
    flag, _ = AnnotatorFlag.objects.update_or_create(
        campaign=campaign, annotator_id=annotator_id,
        defaults={"excluded": excluded, "note": note})
    return flag
