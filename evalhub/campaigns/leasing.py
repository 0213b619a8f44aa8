"""Serving tasks to annotators under expiring leases.

A task is held by one annotator at a time (a partial unique index enforces it); an annotator
never gets a task they already judged, skipped or reported; a task stops being served once it
has its configured number of judgments. On PostgreSQL, ``SELECT ... FOR UPDATE SKIP LOCKED``
lets concurrent annotators take different tasks without waiting on each other.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, QuerySet, Sum
from django.utils import timezone

from evalhub.campaigns.models import (
    Campaign,
    CampaignStatus,
    ComparisonTask,
    Judgment,
    Lease,
    LeaseStatus,
    PairPolicy,
)
from evalhub.core.errors import EvalHubError

# The page shows one task and prefetches the next: two leases per annotator at most.
MAX_ACTIVE_LEASES = 2
# Loaded with the task so the page's payload needs no further query.
TASK_PAYLOAD_RELATIONS = ("prompt__source_image", "image_a__blob", "image_b__blob")
# Why no task is served; shared with the SQL path (rating_db.py).
HOLDING_MAX = "You already hold the most tasks at once; finish one first."
NOTHING_LEFT = "Nothing left to rate in this campaign for you. Thank you!"


class NothingToRate(EvalHubError):
    """No task is available for this annotator right now."""


def active_leases(*, campaign: Campaign, annotator: AbstractBaseUser) -> QuerySet[Lease]:
    return Lease.objects.filter(
        campaign=campaign, annotator=annotator, status=LeaseStatus.ACTIVE,
        expires_at__gt=timezone.now(),
    ).order_by("leased_at")


def _needing_votes(campaign: Campaign, *, gold: bool) -> QuerySet[ComparisonTask]:
    tasks = ComparisonTask.objects.filter(campaign=campaign, is_gold=gold)
    if not gold:
        tasks = tasks.filter(judgments_count__lt=F("judgments_needed"))
    return tasks


def _serving_order(campaign: Campaign) -> list[str]:
    order = ["judgments_count", "shuffle_key"]
    if campaign.pair_policy == PairPolicy.ACTIVE:
        order = ["-priority", *order]
    return order


def _candidates(campaign: Campaign, annotator: AbstractBaseUser, *, gold: bool
                ) -> QuerySet[ComparisonTask]:
    now = timezone.now()
    held = Lease.objects.filter(task=OuterRef("pk"), status=LeaseStatus.ACTIVE,
                                expires_at__gt=now)
    # Any lease this annotator had that did not merely expire: judged, skipped or reported.
    # The campaign conditions change no result; they let the planner use the (campaign,
    # annotator) indexes instead of scanning every judgment of the annotator.
    seen = Lease.objects.filter(task=OuterRef("pk"), campaign=campaign,
                                annotator=annotator).exclude(
        status__in=[LeaseStatus.EXPIRED, LeaseStatus.ACTIVE])
    judged = Judgment.objects.filter(task=OuterRef("pk"), campaign=campaign,
                                     annotator=annotator, retracted_at__isnull=True)
    return _needing_votes(campaign, gold=gold).filter(~Exists(held), ~Exists(seen),
                                                      ~Exists(judged))


def _walk(campaign: Campaign, annotator: AbstractBaseUser, *, gold: bool, start: float
          ) -> list[QuerySet[ComparisonTask]]:
    """Where to look for a free task, in turn.

    The best tier (same priority under the active policy, same judgments_count) is walked from
    a random shuffle_key ``start`` and wraps around, so concurrent annotators start at
    different tasks instead of all passing over the ones the others hold; ties are still
    broken at random and fewer judgments still come first. Then the whole serving order.
    """
    order = _serving_order(campaign)
    best = _needing_votes(campaign, gold=gold).order_by(*order).values(
        "priority", "judgments_count").first()
    if best is None:
        return []
    tier = {"judgments_count": best["judgments_count"]}
    if campaign.pair_policy == PairPolicy.ACTIVE:
        tier["priority"] = best["priority"]
    candidates = _candidates(campaign, annotator, gold=gold)
    return [candidates.filter(**tier, shuffle_key__gte=start).order_by("shuffle_key"),
            candidates.filter(**tier, shuffle_key__lt=start).order_by("shuffle_key"),
            candidates.order_by(*order)]


def _take(campaign: Campaign, annotator: AbstractBaseUser, *, gold: bool, start: float
          ) -> Lease | None:
    """Lock the first free task of the walk and lease it.

    The candidate query's NOT EXISTS ran on a snapshot: someone may have leased the task
    between that snapshot and our row lock. The partial unique index then refuses our insert,
    and the task is passed over.
    """
    walk = _walk(campaign, annotator, gold=gold, start=start)
    passed_over: list[int] = []
    for _ in range(20):
        with transaction.atomic():
            task = None
            for candidates in walk:
                # No joins here: the locking query stays cheap to plan and to run.
                task = (candidates.exclude(pk__in=passed_over)
                        .select_for_update(skip_locked=True).first())
                if task is not None:
                    break
            if task is None:
                return None
            now = timezone.now()
            # An expired lease still marked active would block the unique index.
            Lease.objects.filter(task=task, status=LeaseStatus.ACTIVE, expires_at__lte=now
                                 ).update(status=LeaseStatus.EXPIRED, closed_at=now)
            try:
                with transaction.atomic():
                    lease = Lease.objects.create(
                        task=task, campaign=campaign, annotator=annotator,
                        a_side=new_a_side(),
                        expires_at=now + timedelta(seconds=campaign.lease_seconds),
                    )
            except IntegrityError:
                passed_over.append(task.pk)
                continue
        lease.task = ComparisonTask.objects.select_related(*TASK_PAYLOAD_RELATIONS).get(
            pk=task.pk)
        return lease
    return None


def check_open_for_rating(campaign: Campaign) -> None:
    if campaign.status != CampaignStatus.ACTIVE:
        raise EvalHubError(f"Campaign {campaign.name!r} is {campaign.status}, not open for rating.")


def draw_gold(campaign: Campaign) -> bool:
    """Whether this lease tries a gold task first (the campaign's gold rate, per lease)."""
    return campaign.gold_rate > 0 and random.random() < campaign.gold_rate


def new_a_side() -> str:
    """Where image A is shown: random per lease, so position bias averages out."""
    return random.choice(("left", "right"))


def lease_next(*, campaign: Campaign, annotator: AbstractBaseUser,
               exclude: set | None = None) -> Lease:
    """Give the annotator a task: one they already hold, or a newly leased one.

    ``exclude`` names leases the page already shows, so asking for the prefetched next task
    does not return the current one.
    """
    check_open_for_rating(campaign)
    holding = list(active_leases(campaign=campaign, annotator=annotator))
    held = [lease for lease in holding if not exclude or lease.pk not in exclude]
    if held:
        lease = held[0]
        lease.task = ComparisonTask.objects.select_related(*TASK_PAYLOAD_RELATIONS).get(
            pk=lease.task_id)
        return lease
    if len(holding) >= MAX_ACTIVE_LEASES:
        raise NothingToRate(HOLDING_MAX)
    lease = None
    start = random.random()
    if draw_gold(campaign):
        lease = _take(campaign, annotator, gold=True, start=start)
    if lease is None:
        lease = _take(campaign, annotator, gold=False, start=start)
    if lease is None:
        raise NothingToRate(NOTHING_LEFT)
    return lease


def lease_for_annotator(*, lease_id, annotator: AbstractBaseUser) -> Lease:
    lease = Lease.objects.select_related("task", "campaign").filter(pk=lease_id).first()
    if lease is None or lease.annotator_id != annotator.pk:
        raise LeaseNotYours("This task is not leased to you.")
    return lease


class LeaseNotYours(EvalHubError):
    """A vote or action on a task that is not leased to the caller."""


def lease_close(*, lease: Lease, status: str) -> None:
    if lease.status != LeaseStatus.ACTIVE:
        raise EvalHubError(f"This task is already {lease.status}.")
    Lease.objects.filter(pk=lease.pk, status=LeaseStatus.ACTIVE).update(
        status=status, closed_at=timezone.now())
    lease.status = status


def campaign_remaining(*, campaign_id: int) -> int:
    """Judgments still needed across non-gold tasks."""
    totals = ComparisonTask.objects.filter(campaign_id=campaign_id, is_gold=False).aggregate(
        needed=Sum("judgments_needed"), done=Sum("judgments_count"))
    return max(0, (totals["needed"] or 0) - (totals["done"] or 0))

