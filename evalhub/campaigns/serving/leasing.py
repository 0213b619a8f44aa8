"""Serving tasks to annotators under expiring leases.

A task is held by one annotator at a time (a partial unique index enforces it); an annotator
never gets a task they already judged, skipped or reported; a task stops being served once it
has its configured number of judgments.

Serving order: fewest judgments first (the active policy puts ``priority`` first), ties broken
by a stored random ``shuffle_key``. The best tier is walked from a random key, so concurrent
annotators start at different tasks instead of all passing over the ones the others hold; if
nothing is free there, the whole serving order is walked. Each walk is one index-ordered
``SELECT ... LIMIT 1 FOR UPDATE SKIP LOCKED`` that also loads what the page shows: concurrent
annotators take different tasks without waiting on each other, and the cost of a lease does
not grow with the number of votes.

What serving needs to know about the rater (leases held, the best tier, their vote count) is
read as subqueries of the query the request runs anyway (the campaign, or the lease a vote
locks): see :func:`rater_annotations`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from evalhub.campaigns.building.active import uses_priorities
from evalhub.campaigns.models import (
    Campaign,
    CampaignStatus,
    ComparisonTask,
    Criterion,
    ImageReport,
    JudgeKind,
    Judgment,
    Lease,
    LeaseStatus,
    PairPolicy,
    TaskKind,
)
from evalhub.campaigns.signals import leases_expired
from evalhub.core.errors import EvalHubError
from evalhub.core.prepared import (
    Param,
    PreparedInsert,
    PreparedQuery,
    numbered_params,
    numbered_values,
)

# The page shows one task and prefetches the next: two leases per annotator at most.
MAX_ACTIVE_LEASES = 2
# Loaded with the task so the page's payload needs no further query.
TASK_PAYLOAD_RELATIONS = ("prompt__source_image", "prompt__source_video__poster", "image_a__blob",
                          "image_b__blob")
# The columns of those relations the payload reads (serving/payloads.py, kwise.py): the serving
# walk loads these and the task's own, not the relations' JSON metadata, file names and
# timestamps (about 60 of the walk's 90 columns, each decoded and set on a model per lease).
# No stored token: the names the payload gives are per project, computed from the campaign's
# project and the blob's id (blobs/names.py).
_IMAGE_FIELDS = ("sha256", "width", "height", "tiles_format")
_VIDEO_FIELDS = ("sha256", "width", "height", "fps", "frame_count", "duration_s")
TASK_PAYLOAD_FIELDS = (
    *(field.name for field in ComparisonTask._meta.concrete_fields),
    "prompt__text",
    *(f"prompt__source_image__{name}" for name in _IMAGE_FIELDS),
    *(f"prompt__source_video__{name}" for name in _VIDEO_FIELDS),
    *(f"prompt__source_video__poster__{name}" for name in _IMAGE_FIELDS),
    "image_a__video", "image_b__video",
    *(f"image_a__blob__{name}" for name in _IMAGE_FIELDS),
    *(f"image_b__blob__{name}" for name in _IMAGE_FIELDS),
)
# The campaign's columns that serving and voting never read, and which may be long (free
# text, the build's JSON report): left out of the campaign the rating path loads.
CAMPAIGN_UNREAD_FIELDS = ("instructions", "build_report")
HOLDING_MAX = "You already hold the most tasks at once; finish one first."
NOTHING_LEFT = "Nothing left to rate in this campaign for you. Thank you!"
# Leasing retries when a concurrent annotator leased the chosen task between our snapshot and
# our row lock (the unique index refuses the second lease); each retry passes that task over.
MAX_LEASE_ATTEMPTS = 20


class NothingToRate(EvalHubError):
    """No task is available for this annotator right now."""


class HoldingMax(NothingToRate):
    """The annotator already holds the most tasks at once (:data:`MAX_ACTIVE_LEASES`): more
    will come once one of them is voted, skipped or released."""


class LeaseNotYours(EvalHubError):
    """A vote or action on a task that is not leased to the caller."""

    http_status = 403


class RaterState(Protocol):
    """The annotations :func:`rater_annotations` adds to a campaign or lease row."""

    rater_held_lease: uuid.UUID | None
    rater_active_leases: int
    rater_votes: int
    best_judgments_balanced: int | None
    best_judgments_active: int | None
    best_priority: float | None


# The values the rating path's prepared queries bind (the campaign read, the serving walks, the
# vote's lease lock), each converted for the database as its column converts a literal.
_PARAM_FIELDS = {
    "campaign_id": Campaign._meta.pk,
    "annotator_id": Lease._meta.get_field("annotator").target_field,
    "now": Lease._meta.get_field("expires_at"),
    "lease_id": Lease._meta.pk,
    "shown": Lease._meta.pk,  # numbered: the leases the page shows
    "passed": ComparisonTask._meta.pk,  # numbered: the tasks a lease retry passes over
    "task_id": ComparisonTask._meta.pk,
    "judgments_count": ComparisonTask._meta.get_field("judgments_count"),
    "priority": ComparisonTask._meta.get_field("priority"),
    "start": ComparisonTask._meta.get_field("shuffle_key"),
}


def rating_param(name: str) -> Param:
    """The placeholder of one value of the rating path's prepared queries (by name)."""
    return Param(name, _PARAM_FIELDS[name])


def rating_params(name: str, count: int) -> list[Param]:
    """``count`` numbered placeholders (``shown0..``, ``passed0..``); bound by
    :func:`rating_values`."""
    return numbered_params(name, count, _PARAM_FIELDS[name])


def rating_values(name: str, items: Collection[Any]) -> dict[str, Any]:
    """The values of :func:`rating_params` placeholders, as keywords for ``run``."""
    return numbered_values(name, items)


def _active_leases_of(annotator_id: int, campaign: Any, now: datetime) -> QuerySet[Lease]:
    return Lease.objects.filter(campaign_id=campaign, annotator_id=annotator_id,
                                status=LeaseStatus.ACTIVE, expires_at__gt=now)


def _needing_votes(campaign: Any, *, gold: bool) -> QuerySet[ComparisonTask]:
    tasks = ComparisonTask.objects.filter(campaign_id=campaign, is_gold=gold)
    if not gold:
        tasks = tasks.filter(judgments_count__lt=F("judgments_needed"))
    return tasks


def _serving_order(pair_policy: str) -> list[str]:
    order = ["judgments_count", "shuffle_key"]
    if uses_priorities(pair_policy):
        order = ["-priority", *order]
    return order


def rater_votes(*, campaign: Any, annotator_id: int) -> QuerySet[Judgment]:
    """The rater's live votes in a campaign (one judgment per vote: the overall criterion).

    ``campaign`` is an id or an OuterRef to one.
    """
    return Judgment.objects.filter(campaign_id=campaign, annotator_id=annotator_id,
                                   criterion=Criterion.OVERALL, judge_kind=JudgeKind.HUMAN,
                                   retracted_at__isnull=True)


def counted(queryset: QuerySet, group: str) -> QuerySet:
    """The number of rows of ``queryset`` (grouped by ``group``, which the filter fixes: one
    row), as a subquery's values. ``COUNT(*)`` reads no column, so an index that answers the
    filter answers the count alone: an index-only scan reads a few index pages per thousand
    rows, where ``COUNT(id)`` read a heap page for nearly every row (59 pages for a rater's
    165 votes against 3)."""
    return queryset.order_by().values(group).annotate(n=Count("*")).values("n")


def _count(queryset: QuerySet, group: str) -> Coalesce:
    return Coalesce(Subquery(counted(queryset, group)), Value(0))


def rater_annotations(*, campaign: OuterRef, annotator_id: int | Param,
                      exclude: Collection[uuid.UUID | Param] = (), now: datetime | Param
                      ) -> dict[str, Any]:
    """Subqueries that tell serving about the rater, for the query the request runs anyway.

    - ``rater_held_lease``: an active lease of the rater that the page does not show
      (``exclude``), to be served again (a reloaded page resumes where it was);
    - ``rater_active_leases``: how many active leases the rater holds;
    - ``rater_votes``: the rater's live overall judgments in the campaign;
    - ``best_judgments`` / ``best_priority``: the best tier of the serving order, read from
      the first entry of the serving index (balanced campaigns ignore the priority).
    """
    held = _active_leases_of(annotator_id, campaign, now)
    votes = rater_votes(campaign=campaign, annotator_id=annotator_id)
    # Both orders are listed and the campaign's policy picks one: the subquery must not depend
    # on a Python-side value of the outer row.
    balanced = _needing_votes(campaign, gold=False).order_by(*_serving_order(
        PairPolicy.BALANCED))
    active = _needing_votes(campaign, gold=False).order_by(*_serving_order(PairPolicy.ACTIVE))
    return {
        "rater_held_lease": Subquery(held.exclude(pk__in=list(exclude)).order_by("leased_at")
                                     .values("pk")[:1]),
        "rater_active_leases": _count(held, "annotator_id"),
        "rater_votes": _count(votes, "annotator_id"),
        "best_judgments_balanced": Subquery(balanced.values("judgments_count")[:1]),
        "best_judgments_active": Subquery(active.values("judgments_count")[:1]),
        "best_priority": Subquery(active.values("priority")[:1]),
    }


def best_tier(row: Any, pair_policy: str) -> dict[str, Any] | None:
    """The serving order's best tier from the row's annotations, as filter keywords."""
    if uses_priorities(pair_policy):
        if row.best_judgments_active is None:
            return None
        return {"priority": row.best_priority, "judgments_count": row.best_judgments_active}
    if row.best_judgments_balanced is None:
        return None
    return {"judgments_count": row.best_judgments_balanced}


def may_rate(user_id: int | Param, *, campaign: OuterRef, project: OuterRef) -> Q:
    """The one rule of who may rate a campaign, as a filter on the query that names it: a
    member of its project (any role) and, when the campaign names its annotators
    (``Campaign.annotators``), one of them. ``campaign`` and ``project`` point at the
    campaign's id and its project's id in that query.

    Serving (``campaign_for_rating``), voting (the lease lock), the home page's list and the
    rating page all ask this, so an annotator left out is neither served nor counted, and a
    vote on a lease taken before they were left out is refused. Two index probes per
    subquery (membership, and the assignment table's unique (campaign, user)).
    """
    from evalhub.projects.models import Membership

    assigned = Campaign.annotators.through.objects.filter(campaign_id=campaign)
    return (Q(Exists(Membership.objects.filter(project_id=project, user_id=user_id)))
            & (~Exists(assigned) | Exists(assigned.filter(user_id=user_id))))


def _campaign_for_rating(excluded: int) -> QuerySet[Campaign]:
    """Values (bound by :data:`_CAMPAIGN`): campaign_id, annotator_id, now, ``shown0..``."""
    annotator = rating_param("annotator_id")
    return (Campaign.objects.defer(*CAMPAIGN_UNREAD_FIELDS)
            .filter(pk=rating_param("campaign_id"))
            .filter(may_rate(annotator, campaign=OuterRef("pk"), project=OuterRef("project_id")))
            .annotate(**rater_annotations(
                campaign=OuterRef("pk"), annotator_id=annotator,
                exclude=rating_params("shown", excluded), now=rating_param("now")))[:1])


_CAMPAIGN = PreparedQuery(_campaign_for_rating)


def campaign_for_rating(*, annotator: AbstractBaseUser, campaign_id: int,
                        exclude: Collection[uuid.UUID] = ()) -> Campaign:
    """The campaign if the annotator may rate it (:func:`may_rate`), with the rater
    annotations.

    One query. Otherwise raises NoSuchCampaign (404: no role in its project) or NotAssigned
    (403: the campaign names its annotators and this is not one of them).
    """
    from evalhub.campaigns.selectors import NoSuchCampaign, campaign_for_rater

    shown = list(exclude)
    found = _CAMPAIGN.run(len(shown), campaign_id=campaign_id, annotator_id=annotator.pk,
                          now=timezone.now(), **rating_values("shown", shown))
    if not found:
        campaign_for_rater(user=annotator, campaign_id=campaign_id)  # says which refusal
        raise NoSuchCampaign("No such campaign.")
    return found[0]


def _held(now: Any) -> QuerySet[Lease]:
    """The lease holding the outer task at ``now``, if any."""
    return Lease.objects.filter(task=OuterRef("pk"), status=LeaseStatus.ACTIVE,
                                expires_at__gt=now)


def _for_rater(*, campaign: Any, annotator: Any, gold: bool) -> QuerySet[ComparisonTask]:
    """The tasks still needing votes that this annotator may rate, whoever holds them now."""
    # Any lease this annotator had that did not merely expire: judged, skipped or reported.
    seen = Lease.objects.filter(task=OuterRef("pk"), annotator_id=annotator).exclude(
        status__in=[LeaseStatus.EXPIRED, LeaseStatus.ACTIVE])
    judged = Judgment.objects.filter(task=OuterRef("pk"), annotator_id=annotator,
                                     retracted_at__isnull=True)
    return _needing_votes(campaign, gold=gold).filter(~Exists(seen), ~Exists(judged))


def _candidates(*, campaign: Any, annotator: Any, gold: bool, now: Any
                ) -> QuerySet[ComparisonTask]:
    # An active lease past its expiry does not hold the task but still blocks the unique
    # index: the insert then fails and _take closes it (see _close_stale_leases). Flagging it
    # here instead (an EXISTS in the select list) was planned as a hashed subplan that read
    # every lease of the table on every walk.
    return (_for_rater(campaign=campaign, annotator=annotator, gold=gold)
            .filter(~Exists(_held(now)))
            .select_related(*TASK_PAYLOAD_RELATIONS).only(*TASK_PAYLOAD_FIELDS))


def held_by_others(*, campaign: Campaign, annotator: Any) -> bool:
    """Whether a task this annotator may still rate (serving's rules: not judged, skipped or
    reported by them, still needing judgments; gold pairs aside, as in "remaining") exists
    besides those they hold themselves. Asked only when nothing could be leased to them, so
    such a task is leased to someone else (or was taken a moment ago): then "nothing to lease"
    is not "done", as that lease may end unvoted (a closed tab). One query."""
    mine = _held(timezone.now()).filter(annotator_id=annotator.pk)
    return (_for_rater(campaign=campaign.pk, annotator=annotator.pk, gold=False)
            .filter(~Exists(mine)).exists())


# Walks of the serving order: "tier" walks the best tier from the random start, "whole" the
# whole order. Tier keys are filter values of best_tier().
TIER_WALK, WHOLE_WALK = "tier", "whole"


def _walk(gold: bool, pair_policy: str, walk: str, passed_over: int
          ) -> QuerySet[ComparisonTask]:
    """The first free task of one walk, locked (``SKIP LOCKED``), with its payload relations.

    Values (bound by :data:`_WALKS`): campaign_id, annotator_id, now, the passed-over task ids
    ``passed0..``, and for the tier walk ``start`` and the tier's keys.
    """
    candidates = _candidates(campaign=rating_param("campaign_id"),
                             annotator=rating_param("annotator_id"), gold=gold,
                             now=rating_param("now"))
    if passed_over:
        candidates = candidates.exclude(pk__in=rating_params("passed", passed_over))
    if walk == TIER_WALK:
        tier = {"judgments_count": rating_param("judgments_count")}
        if uses_priorities(pair_policy):
            tier["priority"] = rating_param("priority")
        candidates = candidates.filter(
            **tier, shuffle_key__gte=rating_param("start")).order_by("shuffle_key")
    else:
        candidates = candidates.order_by(*_serving_order(pair_policy))
    # The campaign's status as committed when the walk runs (an init plan: once per walk),
    # for _take to refuse a lease once a pause or close has been answered.
    candidates = candidates.annotate(campaign_status_now=Subquery(
        Campaign.objects.filter(pk=rating_param("campaign_id")).values("status")[:1]))
    # NO KEY: a vote's judgment insert (which references the task) does not wait on a walk.
    return candidates.select_for_update(skip_locked=True, of=("self",), no_key=True)[:1]


_WALKS = PreparedQuery(_walk)
_NEW_LEASE = PreparedInsert(Lease)



def _take(campaign: Campaign, annotator: AbstractBaseUser, *, gold: bool,
          tier: dict | None) -> Lease | None:
    """Lock the first free task of the walk and lease it (its payload relations loaded)."""
    start = random.random()
    walks = [(WHOLE_WALK, {})] if gold or tier is None else [
        (TIER_WALK, {**tier, "start": start}), (WHOLE_WALK, {})]
    passed_over: list[int] = []
    for _ in range(MAX_LEASE_ATTEMPTS):
        now = timezone.now()
        values = {"campaign_id": campaign.pk, "annotator_id": annotator.pk, "now": now,
                  **rating_values("passed", passed_over)}
        try:
            with transaction.atomic():
                task = None
                for walk, walk_values in walks:
                    found = _WALKS.run(gold, campaign.pair_policy, walk, len(passed_over),
                                       **values, **walk_values)
                    if found:
                        task = found[0]
                        break
                if task is None:
                    return None
                lease = Lease(task=task, campaign=campaign, annotator=annotator,
                              a_side=new_a_side(), order=new_order(campaign), leased_at=now,
                              expires_at=now + timedelta(seconds=campaign.lease_seconds))
                # The campaign was read before this transaction: a pause or close answered
                # since then must not be followed by a new lease (its pair would be shown and
                # its vote refused). The walk read the status again, in the same statement.
                campaign.status = task.campaign_status_now or CampaignStatus.CLOSED
                check_open_for_rating(campaign)
                _NEW_LEASE.run([lease])
        except IntegrityError:
            # The task's one active lease exists: one past its expiry is closed and the walk
            # runs again; one leased by someone else after our snapshot is passed over.
            if not _close_stale_leases(task.pk):
                passed_over.append(task.pk)
            continue
        return lease
    return None


def _close_stale_leases(task_id: int) -> int:
    """Close the task's active leases past their expiry; how many. The task's lock first, as
    every write to its leases."""
    with transaction.atomic():
        list(ComparisonTask.objects.select_for_update(no_key=True).filter(pk=task_id)
             .values_list("pk", flat=True))
        return expire_stale_leases(task_id=task_id, now=timezone.now())


def expire_stale_leases(*, task_id: int, now: datetime) -> int:
    """Mark the task's active leases past their expiry ``expired`` (the annotator left the
    pair: such a lease holds nothing but still blocks the one-active-lease index); how many.
    The caller holds the task's lock. Counted once the transaction commits
    (``campaigns.signals.leases_expired``, ``/metrics``: ``evalhub_leases_expired_total``)."""
    expired = Lease.objects.filter(task_id=task_id, status=LeaseStatus.ACTIVE,
                                   expires_at__lte=now).update(status=LeaseStatus.EXPIRED,
                                                               closed_at=now)
    if expired:
        transaction.on_commit(lambda: leases_expired.send(sender=Lease, count=expired))
    return expired


class CampaignNotOpen(EvalHubError):
    """The campaign is not active: nothing is served, voted, undone, skipped or reported.

    400, not 409: a 409 means another vote already answered the lease (the page says the
    vote was not counted, as answered elsewhere), and this one was refused for the campaign.
    """

    code = "campaign_not_open"


# Why a campaign takes no rating, by status: a closed or failed one never opens again (it is
# over), a paused one may; the rating page adds its own advice on top (static/js/rate.js).
_NOT_OPEN = {
    CampaignStatus.PAUSED: "Campaign {name!r} is paused, not open for rating until it is resumed.",
    CampaignStatus.CLOSED: "Campaign {name!r} is over: it was closed and takes no more votes.",
    CampaignStatus.FAILED: "Campaign {name!r} is over: it failed and takes no votes.",
}
_NOT_OPEN_YET = "Campaign {name!r} is not open for rating yet."  # building, draft


def check_open_for_rating(campaign: Campaign) -> None:
    if campaign.status != CampaignStatus.ACTIVE:
        raise CampaignNotOpen(
            _NOT_OPEN.get(campaign.status, _NOT_OPEN_YET).format(name=campaign.name))


def draw_gold(campaign: Campaign) -> bool:
    """Whether this lease tries a gold task first (the campaign's gold rate, per lease)."""
    return campaign.gold_rate > 0 and random.random() < campaign.gold_rate


def new_a_side() -> str:
    """Where image A is shown: random per lease, so position bias averages out."""
    return random.choice(("left", "right"))


def new_order(campaign: Campaign) -> list[int] | None:
    """Best of K: the canonical positions in display order, a fresh random permutation per
    lease (position bias averages out, and no slot stands for a run); None for pairs."""
    if campaign.task_kind != TaskKind.BEST_OF_K:
        return None
    return random.sample(range(campaign.k), campaign.k)


def lease_next(*, campaign: Campaign, annotator: AbstractBaseUser, state: RaterState,
               released: int = 0) -> Lease:
    """Give the annotator a task: one they already hold and the page does not show, or a new one.

    ``campaign`` and ``state`` come from :func:`campaign_for_rating` (or the lease a vote
    locked); ``released`` counts leases closed since ``state`` was read (the vote's own).
    """
    check_open_for_rating(campaign)
    if state.rater_held_lease is not None:
        return lease_queryset().get(pk=state.rater_held_lease)
    if state.rater_active_leases - released >= MAX_ACTIVE_LEASES:
        raise HoldingMax(HOLDING_MAX)
    lease = None
    if draw_gold(campaign):
        lease = _take(campaign, annotator, gold=True, tier=None)
    if lease is None:
        lease = _take(campaign, annotator, gold=False,
                      tier=best_tier(state, campaign.pair_policy))
    if lease is None:
        raise NothingToRate(NOTHING_LEFT)
    return lease


def lease_queryset() -> QuerySet[Lease]:
    """Leases with everything the page's payload shows (the campaign: its project names the
    images, blobs/names.py)."""
    return (Lease.objects.select_related("campaign", *(f"task__{r}" for r in
                                                       TASK_PAYLOAD_RELATIONS))
            .defer(*(f"campaign__{name}" for name in CAMPAIGN_UNREAD_FIELDS)))


def active_leases(*, campaign: Campaign, annotator: AbstractBaseUser) -> QuerySet[Lease]:
    return _active_leases_of(annotator.pk, campaign.pk, timezone.now()).order_by("leased_at")


def lease_for_annotator(*, lease_id: uuid.UUID, annotator: AbstractBaseUser,
                        campaign: Campaign) -> Lease:
    lease = Lease.objects.select_related("task", "campaign").filter(pk=lease_id).first()
    if lease is None or lease.annotator_id != annotator.pk or lease.campaign_id != campaign.pk:
        raise LeaseNotYours("This task is not leased to you.")
    return lease


def lease_close(*, lease: Lease, status: str) -> None:
    """Skip (or, through lease_report, report) a task: only in an open campaign."""
    check_open_for_rating(lease.campaign)
    if lease.status != LeaseStatus.ACTIVE:
        raise EvalHubError(f"This task is already {lease.status}.")
    Lease.objects.filter(pk=lease.pk, status=LeaseStatus.ACTIVE).update(
        status=status, closed_at=timezone.now())
    lease.status = status


def lease_report(*, lease: Lease, side: str, note: str = "") -> ImageReport:
    """Report a broken image (``side`` as displayed: left, right or source); skips the task."""
    task = lease.task
    image = None
    if side == "source" and task.prompt.source_image_id is None:
        raise EvalHubError("This task has no source image to report.")
    if lease.order is not None and side != "source":
        # Best of K: ``side`` is the displayed slot, 0..K-1.
        from evalhub.campaigns.serving.kwise import image_in_slot

        image = image_in_slot(lease, side)
    elif side not in ("left", "right", "source"):
        raise EvalHubError("Report the left, right or source image of a pair.")
    elif side != "source":
        shows_a = (side == "left") == (lease.a_side == "left")
        image = task.image_a if shows_a else task.image_b
    with transaction.atomic():
        report = ImageReport.objects.create(task=task, image=image, side=side,
                                            annotator_id=lease.annotator_id, note=note)
        lease_close(lease=lease, status=LeaseStatus.REPORTED)
    return report


def campaign_remaining(*, campaign_id: int) -> int:
    """Judgments still needed across non-gold tasks."""
    totals = ComparisonTask.objects.filter(campaign_id=campaign_id, is_gold=False).aggregate(
        needed=Sum("judgments_needed"), done=Sum("judgments_count"))
    return max(0, (totals["needed"] or 0) - (totals["done"] or 0))

