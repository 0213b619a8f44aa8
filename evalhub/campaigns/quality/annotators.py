"""Per-annotator quality: gold accuracy, vote times, flags, and exclusion.

What the campaign page and the quality API show per annotator (:class:`AnnotatorQuality`):
counts read here (votes, gold votes and accuracy, reported latency, server-measured times and
fast votes by the one timing rule of :mod:`evalhub.campaigns.quality.timing`), and the flags,
their reasons and the vote weight of the annotator reliability estimate
(:mod:`evalhub.campaigns.quality.reliability`: gold accuracy, fast votes, position bias,
disagreement with the consensus ranking), the one the leaderboards' quality filter and the
dashboard act on. A flag informs; excluding an annotator's votes is the scientist's call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q

from evalhub.campaigns.models import AnnotatorFlag, Campaign, Criterion, Judgment
from evalhub.campaigns.quality.timing import timed_counts, timed_votes
from evalhub.campaigns.quality.votes import human_judgments
from evalhub.projects.models import Membership
from evalhub.projects.references import ForeignReference

if TYPE_CHECKING:  # reliability.py imports this module
    from evalhub.campaigns.quality.reliability import CampaignReliability

__all__ = ["AnnotatorQuality", "GoldStats", "annotator_quality", "annotator_set_excluded",
           "excluded_annotator_ids", "gold_accuracy_by_annotator", "human_judgments",
           "with_reliability"]


@dataclass(frozen=True)
class AnnotatorQuality:
    """One annotator of a campaign as the campaign page and the quality API show them.

    ``flags`` (keys of ``ratings.reliability.FLAG_REASONS``), ``reasons`` (the same in words)
    and ``weight`` (what one vote counts in a weighted leaderboard, 0-1; 0 when excluded; None
    when the estimate has no vote of theirs) are the reliability estimate's
    (:func:`with_reliability`).
    """

    annotator_id: int
    username: str
    votes: int
    gold_votes: int
    gold_correct: int
    gold_accuracy: float | None
    median_latency_ms: float | None  # as the page reported it
    fast_votes: int  # votes under the fast-vote floor, by the server's clock (timing.py)
    median_vote_ms: float | None  # server-measured response time per vote (timing.py)
    flags: tuple[str, ...]
    reasons: tuple[str, ...]
    weight: float | None
    excluded: bool

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def weight_percent(self) -> int | None:
        return None if self.weight is None else round(100 * self.weight)


@dataclass(frozen=True)
class GoldStats:
    gold_votes: int
    gold_correct: int

    @property
    def accuracy(self) -> float | None:
        """Correct gold votes / gold votes; None without a gold vote."""
        return self.gold_correct / self.gold_votes if self.gold_votes else None


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


def with_reliability(rows: Iterable[AnnotatorQuality], reliability: CampaignReliability
                     ) -> list[AnnotatorQuality]:
    """``rows`` with the flags, reasons, weight and exclusion of the reliability estimate
    ``reliability``: the one source of flags for every page. An annotator the estimate does not
    know (none of their votes is one it reads) has no flag and no weight."""
    estimate = {a.annotator_id: a for a in reliability.annotators}
    result = []
    for row in rows:
        known = estimate.get(row.annotator_id)
        result.append(replace(row, flags=(), reasons=(), weight=None) if known is None else
                      replace(row, flags=known.flags, reasons=known.reasons,
                              weight=known.weight, excluded=known.excluded))
    return result


def annotator_quality(*, campaign: Campaign, reliability: CampaignReliability | None = None
                      ) -> list[AnnotatorQuality]:
    """Per-annotator counts, gold accuracy (on the overall criterion), vote times, and the
    flags, reasons and weight of ``reliability`` (default: the estimate the leaderboards use
    now, ``leaderboards.quality_snapshot.current_reliability``: the stored one when current).

    ``fast_votes`` and ``median_vote_ms`` time votes by :mod:`~evalhub.campaigns.quality.timing`
    (from when the pair could first be on screen); ``median_latency_ms`` is what the page
    reported.
    """
    if reliability is None:
        # Imported here: the quality snapshot (leaderboards) stores this function's rows.
        from evalhub.leaderboards.quality_snapshot import current_reliability

        reliability = current_reliability(campaign=campaign)
    rows = timed_votes(campaign=campaign).values_list(
        "annotator_id", "task__is_gold", "latency_ms", "created_at", "shown_at")
    stats: dict[int, dict] = defaultdict(lambda: {"votes": 0, "latency": [], "response_ms": []})
    for annotator_id, is_gold, latency, voted_at, shown_at in rows:
        entry = stats[annotator_id]
        if not is_gold:
            entry["votes"] += 1
        if latency is not None:
            entry["latency"].append(latency)
        if shown_at is not None:
            entry["response_ms"].append((voted_at - shown_at).total_seconds() * 1000.0)
    fast = dict(human_judgments(campaign).filter(criterion=Criterion.OVERALL)
                .values("annotator_id").annotate(**timed_counts(campaign=campaign))
                .values_list("annotator_id", "n_fast"))
    excluded = excluded_annotator_ids(campaign=campaign)
    gold = gold_accuracy_by_annotator(campaign=campaign)
    names = dict(get_user_model().objects.filter(pk__in=stats).values_list("pk", "username"))
    result = []
    for annotator_id, entry in sorted(stats.items()):
        golds = gold.get(annotator_id, GoldStats(0, 0))
        result.append(AnnotatorQuality(
            annotator_id=annotator_id, username=names.get(annotator_id, "?"),
            votes=entry["votes"], gold_votes=golds.gold_votes, gold_correct=golds.gold_correct,
            gold_accuracy=golds.accuracy,
            median_latency_ms=float(np.median(entry["latency"])) if entry["latency"] else None,
            fast_votes=fast.get(annotator_id, 0),
            median_vote_ms=float(np.median(entry["response_ms"])) if entry["response_ms"] else None,
            flags=(), reasons=(), weight=None, excluded=annotator_id in excluded,
        ))
    return with_reliability(result, reliability)


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
