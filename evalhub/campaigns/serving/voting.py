"""Recording votes exactly once, and undoing them.

A vote carries a client-generated id; a retry or a double press with the same id returns the
stored vote instead of counting again (and is refused, 409 ``vote_undone``, once the vote was
undone). A vote is accepted only on a task currently leased to
the voter (or whose lease expired without anyone else taking the task; a newer lease of the
same task to the voter themselves is closed as answered by it).

The task and lease rows are locked first (``SELECT ... FOR NO KEY UPDATE``), so a retry racing
with its original waits for it and then finds the stored vote. The same query checks that the
voter belongs to the campaign's project and reads what serving needs next
(:func:`leasing.rater_annotations`), so a vote that also leases the next task costs, on top of
authentication: the locking read, the judgments' insert, the lease's and the task's updates
(``judgments_count + 1``, ``F()``), then the next task's locking read and the new lease's
insert.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Q, QuerySet
from django.db.models.functions import Least
from django.utils import timezone

from evalhub.campaigns.building.kwise import task_shows_a_file_twice
from evalhub.campaigns.models import (
    Campaign,
    ComparisonTask,
    JudgeKind,
    Judgment,
    Lease,
    LeaseStatus,
    Outcome,
    TaskKind,
)
from evalhub.campaigns.serving.leasing import (
    CAMPAIGN_UNREAD_FIELDS,
    LeaseNotYours,
    active_leases,
    check_open_for_rating,
    may_rate,
    rater_annotations,
    rating_param,
    rating_params,
    rating_values,
)
from evalhub.core.errors import EvalHubError
from evalhub.core.prepared import PreparedInsert, PreparedQuery, PreparedUpdate

# What the page sends, in displayed terms.
DISPLAYED_ANSWERS = ("left", "right", "tie", "both_bad")
MAX_LATENCY_MS = 24 * 3600 * 1000

LEASE_TAKEN = "Your lease on this task expired and it was given to someone else."
LATE_TASK_FULL = ("Your lease on this task expired and the task has all the judgments it needs "
                  "now; this vote was not counted.")
UNDO_NOTHING = "No such vote to undo (not one of your votes in this campaign)."
UNDO_ALREADY = "No such vote to undo: this vote was undone already."
VOTE_UNDONE = ("This vote was undone and no longer counts; it is not recorded again. A new vote "
               "needs a new id.")
UNDO_HELD = ("Vote taken back. Another annotator is rating this pair now; it comes back to "
             "you later.")
UNDO_RETIRED = ("Vote taken back. This set is no longer asked (two of its images are the very "
                "same file), so it does not come back.")
ALREADY_JUDGED = "You already judged this task."
FOREIGN_VOTE_ID = "This vote id belongs to someone else."
NOT_LEASED = "This task is not leased to you."
REUSED_VOTE_ID = ("This vote id was already used for a different vote; "
                  "a new vote needs a new id.")


class VoteConflict(EvalHubError):
    """The task was already judged by this annotator under another vote id."""

    http_status = 409


# The code of both answers about a vote that was undone: its id resent to votes/ (409) and sent
# to votes/undo/ again (400). A page whose undo answer was lost recognises it (static/js/rate.js).
VOTE_UNDONE_CODE = "vote_undone"


class VoteUndone(EvalHubError):
    """A vote resent under the id of a vote that was undone: it stays undone (409)."""

    http_status = 409
    code = VOTE_UNDONE_CODE


class AlreadyUndone(EvalHubError):
    """An undo of a vote that is undone already (400), told apart from "no such vote"."""

    code = VOTE_UNDONE_CODE


@dataclass(frozen=True)
class VoteResult:
    client_id: uuid.UUID
    created: bool  # False when the vote id was seen before (an idempotent retry)
    judgments: dict[str, str]  # criterion -> canonical outcome


@dataclass(frozen=True)
class StoredVote:
    """A vote as stored, with the locked lease and what serving needs next."""

    result: VoteResult
    lease: Lease  # annotated by leasing.rater_annotations; ``lease.campaign`` loaded
    rater_votes: int  # the voter's live overall judgments, this vote included
    released: int  # how many leases counted in ``lease.rater_active_leases`` this vote closed
    # The voter's newer leases of the same task that this (late) vote closed as answered by
    # it (:func:`_close_own_newer_leases`): the page stops showing them.
    closed: tuple[uuid.UUID, ...] = ()


def to_outcome(answer: str, *, a_side: str) -> str:
    """Map a displayed answer to the canonical outcome, given where image A was shown."""
    if answer in ("tie", "both_bad"):
        return answer
    if answer not in ("left", "right"):
        raise EvalHubError(f"Unknown answer {answer!r}; expected one of {DISPLAYED_ANSWERS}.")
    return Outcome.A if answer == a_side else Outcome.B


def _existing(client_id: uuid.UUID, annotator: AbstractBaseUser, *, lease: Lease,
              answers: dict[str, str], rankings: dict[str, list[int]] | None = None
              ) -> VoteResult | None:
    """The vote stored under ``client_id``, if any: a retry returns it unchanged.

    A vote id is a promise that the vote is the same: one resent with another lease or other
    answers (or, best of K, other rankings) is refused (409) rather than answered "recorded"
    while the old answer stays. The same vote resent after it was undone is refused too
    (:class:`VoteUndone`, 409): it stays undone, and "recorded" would say otherwise.
    """
    rows = list(Judgment.objects.filter(client_id=client_id).values_list(
        "annotator_id", "lease_id", "criterion", "outcome", "ranking", "retracted_at"))
    if not rows:
        return None
    if rows[0][0] != annotator.pk:
        raise EvalHubError(FOREIGN_VOTE_ID)
    stored = {criterion: outcome for _, _, criterion, outcome, _, _ in rows}
    try:
        sent = _canonical(lease, answers, rankings)
    except EvalHubError:
        sent = None
    if rows[0][1] != lease.pk or sent != {c: (o, r) for _, _, c, o, r, _ in rows}:
        raise VoteConflict(REUSED_VOTE_ID)
    if rows[0][5] is not None:  # undo retracts every criterion of a vote at once
        raise VoteUndone(VOTE_UNDONE)
    return VoteResult(client_id, False, stored)


def _canonical(lease: Lease, answers: dict[str, str], rankings: dict[str, list[int]] | None
               ) -> dict[str, tuple[str, list[int] | None]]:
    """Criterion -> (canonical outcome, canonical ranking or None) of what the page sent."""
    if lease.order is not None:  # best of K (serving/kwise.py)
        from evalhub.campaigns.serving.kwise import canonical_rankings

        ranked = canonical_rankings(lease=lease, campaign=lease.campaign, answers=answers,
                                    rankings=rankings or {})
        return {c: (Outcome.RANKED, r) for c, r in ranked.items()}
    if rankings:
        from evalhub.campaigns.serving.kwise import PAIRS_ONLY_ANSWERS

        raise EvalHubError(PAIRS_ONLY_ANSWERS)
    validate_answers(lease.campaign, answers)
    return {c: (to_outcome(a, a_side=lease.a_side), None) for c, a in answers.items()}


def check_latency(latency_ms: int | None) -> None:
    if latency_ms is not None and not 0 <= latency_ms <= MAX_LATENCY_MS:
        raise EvalHubError("latency_ms is out of range.")


def validate_answers(campaign: Campaign, answers: dict[str, str]) -> None:
    missing = [c for c in campaign.criteria if c not in answers]
    extra = [c for c in answers if c not in campaign.criteria]
    if missing or extra:
        raise EvalHubError(
            f"Answer every criterion of this campaign ({', '.join(campaign.criteria)}); "
            f"missing {missing or 'none'}, unknown {extra or 'none'}."
        )


def _locked_lease(excluded: int) -> QuerySet[Lease]:
    """The voter's lease, locked, with its campaign, its task and the rater annotations.

    Values (bound by :data:`_LOCK`): lease_id, annotator_id, campaign_id, now, and the leases
    the page shows ``shown0..`` (the voted one first).
    """
    annotator = rating_param("annotator_id")
    # The task row first, then the lease: every write to a task's leases (vote, undo, the
    # serving walk) holds the task's lock first, so no two of them wait on each other.
    # NO KEY: inserts that merely reference the task (judgments, leases) need not wait.
    return (Lease.objects.select_for_update(of=("task", "self"), no_key=True)
            .select_related("campaign", "task")
            .defer(*(f"campaign__{name}" for name in CAMPAIGN_UNREAD_FIELDS))
            .filter(pk=rating_param("lease_id"), annotator_id=annotator,
                    campaign_id=rating_param("campaign_id"))
            .filter(may_rate(annotator, campaign=OuterRef("campaign_id"),
                             project=OuterRef("campaign__project_id")))
            .annotate(**rater_annotations(
                campaign=OuterRef("campaign_id"), annotator_id=annotator,
                exclude=rating_params("shown", excluded), now=rating_param("now")))[:1])


_LOCK = PreparedQuery(_locked_lease)
# The vote's writes, compiled once per connection (the number of criteria is the insert's
# shape): the judgments, the lease closed, the task's counter incremented.
_JUDGMENTS = PreparedInsert(Judgment)
_CLOSE_LEASE = PreparedUpdate(lambda: (
    Lease.objects.filter(pk=rating_param("lease_id")),
    {"status": LeaseStatus.COMPLETED, "closed_at": rating_param("now")}))
_COUNT_VOTE = PreparedUpdate(lambda: (
    ComparisonTask.objects.filter(pk=rating_param("task_id")),
    {"judgments_count": F("judgments_count") + 1}))


def _lock_lease(*, annotator: AbstractBaseUser, campaign_id: int, lease_id: uuid.UUID,
                exclude: set[uuid.UUID]) -> Lease:
    """The voter's lease, locked, with its campaign and the rater annotations (one query)."""
    from evalhub.campaigns.selectors import campaign_for_rater

    shown = [lease_id, *(pk for pk in exclude if pk != lease_id)]
    found = _LOCK.run(len(shown), lease_id=lease_id, annotator_id=annotator.pk,
                      campaign_id=campaign_id, now=timezone.now(),
                      **rating_values("shown", shown))
    if not found:
        campaign_for_rater(user=annotator, campaign_id=campaign_id)  # 404 / 403 first
        raise LeaseNotYours(NOT_LEASED)
    return found[0]


def _check_lease_accepts_vote(lease: Lease, *, now: datetime) -> None:
    """Refuse a new vote on a lease that no longer takes one.

    A late vote (its lease expired: closed as expired, or still active past ``expires_at``)
    counts only if nobody else has taken the task meanwhile: no other annotator holds the task
    now, and no other annotator was leased the task after this lease was given, whatever
    became of that lease (voted, skipped, reported or expired in its turn). The voter's own
    newer leases of the task (it was served to them again: a reloaded page whose outbox still
    held this vote) do not refuse it: the task is still theirs to answer, and the vote closes
    them (:func:`_close_own_newer_leases`). Nor may it give the task more judgments than it
    needs (a set retired meanwhile; gold tasks are asked of everyone and need none). The
    caller holds the task's lock (:func:`_lock_lease`), and every lease is inserted under that
    lock (serving walk, undo), so no lease appears between this check and the vote's commit:
    two requests never both pass it.
    """
    if lease.status == LeaseStatus.COMPLETED:
        raise VoteConflict(ALREADY_JUDGED)
    if lease.status not in (LeaseStatus.ACTIVE, LeaseStatus.EXPIRED):
        raise EvalHubError(f"This task was {lease.status}; it no longer takes a vote.")
    if lease.status == LeaseStatus.ACTIVE and lease.expires_at > now:
        return
    # An active lease past its expiry is still the task's one active lease (the unique index):
    # nobody can have leased the task after it, so only a lease closed as expired is looked up.
    if lease.status == LeaseStatus.EXPIRED and Lease.objects.filter(
            Q(status=LeaseStatus.ACTIVE) | Q(leased_at__gt=lease.leased_at),
            task_id=lease.task_id).exclude(annotator_id=lease.annotator_id).exists():
        raise EvalHubError(LEASE_TAKEN)
    task = lease.task  # locked with the lease: its count is the committed one
    if not task.is_gold and task.judgments_count >= task.judgments_needed:
        raise EvalHubError(LATE_TASK_FULL)


def _close_own_newer_leases(lease: Lease, *, now: datetime) -> tuple[list[uuid.UUID], int]:
    """Close the voter's active lease of ``lease``'s task (other than ``lease``) as answered
    (completed) by the late vote on ``lease``; returns the ids closed and how many of those
    were unexpired (counted in ``lease.rater_active_leases``).

    Asked only when ``lease`` was closed as expired (an active ``lease`` is the task's one
    active lease), after :func:`_check_lease_accepts_vote` found that no other annotator was
    leased the task since: such a lease is the task served to the voter again. Left active, it
    would hold the task (nobody else is served it) until it expires, and a vote on it would be
    refused as a second answer. Under the task's lock, as every lease write.
    """
    newer = list(Lease.objects.filter(
        task_id=lease.task_id, annotator_id=lease.annotator_id, status=LeaseStatus.ACTIVE,
    ).exclude(pk=lease.pk).values_list("pk", "expires_at"))
    if not newer:
        return [], 0
    Lease.objects.filter(pk__in=[pk for pk, _ in newer]).update(
        status=LeaseStatus.COMPLETED, closed_at=now)
    return [pk for pk, _ in newer], sum(expires_at > now for _, expires_at in newer)


def vote_store(*, annotator: AbstractBaseUser, campaign_id: int, lease_id: uuid.UUID,
               client_id: uuid.UUID, answers: dict[str, str], latency_ms: int | None = None,
               exclude: set[uuid.UUID] | None = None,
               rankings: dict[str, list[int]] | None = None) -> StoredVote:
    """Store one vote (one judgment per criterion) exactly once.

    Raises NoSuchCampaign (404) when the annotator has no role in the campaign's project,
    LeaseNotYours (403), VoteConflict (409) when the task was judged under another vote id,
    VoteUndone (409, code ``vote_undone``) for a vote resent after it was undone, EvalHubError
    (400) for a late vote the task no longer takes (:func:`_check_lease_accepts_vote`).
    ``exclude`` names leases the page shows, for the rater annotations of the lease.
    A late vote also closes the voter's newer lease of the same task, if the task was served to
    them again (``StoredVote.closed``).
    A best-of-K vote sends ``rankings`` (criterion -> displayed slots, best first) instead of
    ``answers``; it is stored as outcome "ranked" with the canonical positions.
    """
    check_latency(latency_ms)
    closed: list[uuid.UUID] = []
    released = 0
    try:
        with transaction.atomic():
            lease = _lock_lease(annotator=annotator, campaign_id=campaign_id,
                                lease_id=lease_id, exclude=exclude or set())
            # An active lease has no vote yet (a vote closes it): a fresh vote skips the
            # lookup by vote id; a vote id used elsewhere is caught by the unique index.
            if lease.status != LeaseStatus.ACTIVE and (seen := _existing(
                    client_id, annotator, lease=lease, answers=answers,
                    rankings=rankings)) is not None:
                return StoredVote(seen, lease, lease.rater_votes, 0)
            now = timezone.now()
            _check_lease_accepts_vote(lease, now=now)
            # A stored vote is returned above whatever the campaign's status; a new one is
            # accepted only while the campaign is open, even on a lease taken before it closed.
            check_open_for_rating(lease.campaign)
            released = int(lease.status == LeaseStatus.ACTIVE and lease.expires_at > now)
            canonical = _canonical(lease, answers, rankings)
            judgments = {c: outcome for c, (outcome, _) in canonical.items()}
            _JUDGMENTS.run([
                Judgment(task_id=lease.task_id, campaign_id=lease.campaign_id,
                         criterion=criterion, outcome=outcome, judge_kind=JudgeKind.HUMAN,
                         annotator=annotator, lease=lease, a_side=lease.a_side,
                         ranking=ranking, shown_order=lease.order,
                         latency_ms=latency_ms, client_id=client_id)
                for criterion, (outcome, ranking) in canonical.items()
            ])
            _CLOSE_LEASE.run(lease_id=lease.pk, now=timezone.now())
            _COUNT_VOTE.run(task_id=lease.task_id)
            if lease.status == LeaseStatus.EXPIRED:  # a late vote (the rare path)
                closed, unexpired = _close_own_newer_leases(lease, now=now)
                released += unexpired
                if lease.rater_held_lease in closed:
                    # The lease serving would hand back next was just closed: the next one
                    # held and not shown, if any (the closed ones are no longer active).
                    lease.rater_held_lease = active_leases(
                        campaign=lease.campaign, annotator=annotator,
                    ).exclude(pk__in=[lease_id, *(exclude or ())]).values_list(
                        "pk", flat=True).first()
    except IntegrityError as exc:
        # A vote id seen before (a retry whose lease another request closed meanwhile, or a
        # reused id), or this annotator already judged the task under another vote id.
        with transaction.atomic():  # (a locking read needs a transaction)
            lease = _lock_lease(annotator=annotator, campaign_id=campaign_id,
                                lease_id=lease_id, exclude=exclude or set())
        if (seen := _existing(client_id, annotator, lease=lease, answers=answers,
                              rankings=rankings)) is not None:
            return StoredVote(seen, lease, lease.rater_votes, 0)
        raise VoteConflict(ALREADY_JUDGED) from exc
    lease.status = LeaseStatus.COMPLETED
    after_vote(lease.campaign)
    return StoredVote(VoteResult(client_id, True, judgments), lease, lease.rater_votes + 1,
                      released, tuple(closed))


def after_vote(campaign: Campaign, *, kind: str = "vote") -> None:
    """Tell listeners that the campaign's votes changed (leaderboards, pair priorities,
    metrics): ``kind`` is "vote" for a stored vote, "undo" for a retracted one."""
    from evalhub.campaigns.signals import vote_recorded

    vote_recorded.send(sender=Campaign, campaign=campaign, kind=kind)


@dataclass(frozen=True)
class Undone:
    """A retracted vote: its task leased back to the annotator, or no lease and ``detail``
    saying why not."""

    lease: Lease | None
    detail: str = ""


def vote_undo(*, annotator: AbstractBaseUser, campaign: Campaign, client_id: uuid.UUID
              ) -> Undone:
    """Retract a vote of this annotator and lease its task back to them for a new answer.

    No lease when another annotator holds the task now (:data:`UNDO_HELD`): it is not taken
    from them, and it is served to this annotator again later (their lease is closed as
    expired, which serving does not count as seen). No lease either when the task is a retired
    best-of-K set showing one file twice (:data:`UNDO_RETIRED`): the judgments it needs are
    lowered with its count, so it stays retired, asked of nobody. Only while the campaign is
    open: a closed campaign's votes are final.

    Raises :class:`AlreadyUndone` (400, code ``vote_undone``) for a vote undone before, by an
    earlier request or a concurrent one (exactly one of several concurrent undos retracts the
    vote), and EvalHubError (:data:`UNDO_NOTHING`) for an id of no vote of this annotator here.
    """
    check_open_for_rating(campaign)
    live = Judgment.objects.filter(client_id=client_id, annotator=annotator, campaign=campaign,
                                   retracted_at__isnull=True)
    with transaction.atomic():
        # The vote's task locked first, as a vote and the serving walk lock it, before anything
        # is written: a concurrent undo of the same vote waits here for the first to commit.
        first = (live.select_related("task").select_for_update(of=("task",), no_key=True)
                 .first())
        if first is None:
            raise _nothing_to_undo(annotator=annotator, campaign=campaign, client_id=client_id)
        now = timezone.now()
        # A new statement sees what the undo we waited for committed: then nothing is
        # retracted, and the counter is left alone (lowering it first broke its CHECK).
        if not live.update(retracted_at=now):
            raise AlreadyUndone(UNDO_ALREADY)
        retired = (campaign.task_kind == TaskKind.BEST_OF_K
                   and task_shows_a_file_twice(task_id=first.task_id))
        counts: dict[str, Any] = {"judgments_count": F("judgments_count") - 1}
        if retired:  # as migration 0015 retired it: no more judgments needed than it holds
            counts["judgments_needed"] = Least(F("judgments_needed"), F("judgments_count") - 1)
        ComparisonTask.objects.filter(pk=first.task_id).update(**counts)
        # The vote's lease, and a newer lease of the same task that the vote closed as answered
        # (_close_own_newer_leases): the annotator's completed leases of a task all belong to
        # their one live vote on it. Expired, not completed: serving counts a completed lease
        # as a task seen, and the pair is to be served to them again.
        Lease.objects.filter(task_id=first.task_id, annotator=annotator,
                             status=LeaseStatus.COMPLETED).update(status=LeaseStatus.EXPIRED)
        # A lease past its expiry holds nothing but still blocks the one-active-lease index.
        Lease.objects.filter(task_id=first.task_id, status=LeaseStatus.ACTIVE,
                             expires_at__lte=now).update(status=LeaseStatus.EXPIRED,
                                                         closed_at=now)
        if retired:
            undone = Undone(None, UNDO_RETIRED)
        elif Lease.objects.filter(task_id=first.task_id, status=LeaseStatus.ACTIVE).exists():
            undone = Undone(None, UNDO_HELD)
        else:
            undone = Undone(Lease.objects.create(
                task_id=first.task_id, campaign=campaign, annotator=annotator,
                a_side=first.a_side or "left", order=first.shown_order,
                expires_at=now + timedelta(seconds=campaign.lease_seconds),
            ))
    after_vote(campaign, kind="undo")  # the leaderboards must forget the retracted vote too
    return undone


def _nothing_to_undo(*, annotator: AbstractBaseUser, campaign: Campaign,
                     client_id: uuid.UUID) -> EvalHubError:
    """Why no live vote has this id: undone already (:class:`AlreadyUndone`, its code lets the
    page tell an undo whose answer was lost), or no vote of this annotator at all."""
    if Judgment.objects.filter(client_id=client_id, annotator=annotator,
                               campaign=campaign).exists():
        return AlreadyUndone(UNDO_ALREADY)
    return EvalHubError(UNDO_NOTHING)
