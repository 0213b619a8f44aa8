"""What a campaign's leaderboards and annotator quality are computed from: a fingerprint that
changes with it (a stored snapshot whose fingerprint is not the current one is stale), and
what changed since a snapshot was computed (said on the pages instead of a blanket "new
votes")."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db.models import Count, Max, Q

from evalhub.campaigns.models import AnnotatorFlag, Campaign, JudgeKind, Judgment
from evalhub.evaluation.models import RunMetric

#: What :func:`data_fingerprints` counts for a campaign without votes, flags or run metrics:
#: what one aggregate over no rows answers (the values the stored fingerprints were made with).
_NO_VOTES = {"n": 0, "last": None, "retracted": 0, "last_retracted": None}
_NO_ROWS = {"n": 0, "last": None}


def data_fingerprint(*, campaign: Campaign) -> str:
    """Changes whenever anything a leaderboard or the annotator quality of ``campaign`` is
    computed from changes (:func:`data_fingerprints` of it alone)."""
    return data_fingerprints([campaign])[campaign.pk]


def data_fingerprints(campaigns: Iterable[Campaign]) -> dict[int, str]:
    """:func:`data_fingerprint` of each of ``campaigns``, by id, in four queries however many
    they are (a page reading many boards checks them all at once).

    Each is the sha256 of the campaign's votes (count, last id, retracted count, last
    retraction), annotator flags (count, last change), runs (ids, and the run, checkpoint and
    model names and training steps the board shows), the campaign's name, run metrics (count,
    last stored), criteria and gold thresholds.
    """
    by_id = {c.pk: c for c in campaigns}
    if not by_id:
        return {}
    ids = list(by_id)
    # order_by(): a model's default ordering would join the GROUP BY.
    votes = {row.pop("campaign_id"): row for row in Judgment.objects.filter(campaign_id__in=ids)
             .values("campaign_id").order_by().annotate(
                 n=Count("id"), last=Max("id"),
                 retracted=Count("id", filter=Q(retracted_at__isnull=False)),
                 last_retracted=Max("retracted_at"))}
    flags = {row.pop("campaign_id"): row for row in AnnotatorFlag.objects.filter(
        campaign_id__in=ids).values("campaign_id").order_by().annotate(
        n=Count("id"), last=Max("updated_at"))}
    through = Campaign.runs.through
    run_ids: dict[int, list[int]] = {pk: [] for pk in ids}
    labels: dict[int, list[tuple]] = {pk: [] for pk in ids}
    # The names and steps a board shows are stored with it: renaming a run, checkpoint or
    # model, or correcting a training step, must make it stale as a vote does.
    for campaign_id, run_id, *label in through.objects.filter(campaign_id__in=ids).values_list(
            "campaign_id", "generationrun_id", "generationrun__name",
            "generationrun__checkpoint__name", "generationrun__checkpoint__training_step",
            "generationrun__checkpoint__model__name"):
        run_ids[campaign_id].append(run_id)
        labels[campaign_id].append((run_id, *label))
    # Per run, then summed per campaign: a run rated by several campaigns counts in each.
    per_run = {row["run_id"]: row for row in RunMetric.objects.filter(
        run_id__in={r for runs in run_ids.values() for r in runs})
        .values("run_id").order_by().annotate(n=Count("id"), last=Max("created_at"))}
    fingerprints = {}
    for pk, campaign in by_id.items():
        runs = sorted(run_ids[pk])
        rows = [per_run[r] for r in runs if r in per_run]
        metrics = ({"n": sum(row["n"] for row in rows), "last": max(row["last"] for row in rows)}
                   if rows else _NO_ROWS)
        # The gold thresholds decide the annotator flags stored with the snapshots.
        # The campaign's name is shown by its boards and by the boards pooling it.
        state = {"votes": votes.get(pk, _NO_VOTES), "flags": flags.get(pk, _NO_ROWS),
                 "runs": runs, "labels": sorted(labels[pk]), "name": campaign.name,
                 "metrics": metrics,
                 "criteria": campaign.criteria,
                 "gold": [campaign.min_gold_for_flag, campaign.gold_accuracy_threshold]}
        fingerprints[pk] = hashlib.sha256(
            json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()
    return fingerprints


def pooled_campaigns(*, campaign: Campaign, pool: Sequence[int]) -> list[Campaign]:
    """The campaigns a leaderboard of ``campaign`` pools (``filters.pool``: ids), by id: only
    those of ``campaign``'s project (none without a pool)."""
    if not pool:
        return []
    return list(Campaign.objects.filter(project_id=campaign.project_id, pk__in=list(pool))
                .order_by("pk"))


def leaderboard_fingerprint(*, campaign: Campaign, pool: Sequence[int] = (),
                            own: str | None = None) -> str:
    """The fingerprint of a leaderboard of ``campaign`` that pools the votes of the campaigns
    ``pool`` (ids): ``campaign``'s own (``own`` when the caller has it) without a pool, else one
    that changes whenever any of theirs does. The same queries however many are pooled."""
    pooled = pooled_campaigns(campaign=campaign, pool=pool)
    fingerprints = data_fingerprints([campaign, *pooled] if own is None else pooled)
    own = fingerprints[campaign.pk] if own is None else own
    if not pool:
        return own
    parts = [own, *(f"{c.pk}:{fingerprints[c.pk]}" for c in pooled)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class ChangesSince:
    """What changed in a campaign's data after a snapshot was computed (counts of rows)."""

    votes: int  # human judgments added
    metric_judgments: int  # metric-judge judgments added
    retractions: int  # judgments undone
    annotator_flags: int  # annotators flagged, excluded or readmitted
    metric_values: int  # run-level metric values stored (a metric job finished)

    def __add__(self, other: ChangesSince) -> ChangesSince:
        return ChangesSince(*(getattr(self, f.name) + getattr(other, f.name)
                              for f in dataclasses.fields(self)))

    def describe(self) -> str:
        """E.g. ``"3 new votes, 2 new metric values"``; what else the fingerprint covers (the
        campaign's runs, names or criteria) when no row changed."""
        parts = [f"{n} {what}" for n, what in (
            (self.votes, "new vote" if self.votes == 1 else "new votes"),
            (self.metric_judgments,
             "new metric judgment" if self.metric_judgments == 1 else "new metric judgments"),
            (self.retractions, "vote undone" if self.retractions == 1 else "votes undone"),
            (self.annotator_flags,
             "annotator flag changed" if self.annotator_flags == 1 else "annotator flags changed"),
            (self.metric_values,
             "new metric value" if self.metric_values == 1 else "new metric values"),
        ) if n]
        return ", ".join(parts) or "the campaign's runs, names or criteria changed"


def changes_since(*, campaign: Campaign, since: datetime) -> ChangesSince:
    """The rows behind :func:`data_fingerprint` written or changed after ``since``: what makes
    a snapshot stale, said instead of a blanket "new votes" (three aggregate queries)."""
    judgments = Judgment.objects.filter(campaign=campaign).aggregate(
        votes=Count("id", filter=Q(created_at__gt=since, judge_kind=JudgeKind.HUMAN)),
        metric=Count("id", filter=Q(created_at__gt=since) & ~Q(judge_kind=JudgeKind.HUMAN)),
        retracted=Count("id", filter=Q(retracted_at__gt=since)))
    flags = AnnotatorFlag.objects.filter(campaign=campaign, updated_at__gt=since).count()
    metrics = RunMetric.objects.filter(run__campaigns=campaign, created_at__gt=since).count()
    return ChangesSince(votes=judgments["votes"], metric_judgments=judgments["metric"],
                        retractions=judgments["retracted"], annotator_flags=flags,
                        metric_values=metrics)


def leaderboard_changes_since(*, campaign: Campaign, pool: Sequence[int] = (),
                              since: datetime) -> ChangesSince:
    """:func:`changes_since` summed over ``campaign`` and the campaigns it pools (ids)."""
    changes = changes_since(campaign=campaign, since=since)
    for other in pooled_campaigns(campaign=campaign, pool=pool):
        changes += changes_since(campaign=other, since=since)
    return changes
