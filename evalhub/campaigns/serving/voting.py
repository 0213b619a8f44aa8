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

An undo that finds no vote under its id withdraws the id (:class:`WithdrawnVote`): the vote
arriving afterwards (resent by another tab sharing the outbox, a slow retry) is refused as an
undone one. The locking read also takes the vote id's lock, and the lease's update checks that
the id was not withdrawn; see :func:`_withdraw` for why the two never both succeed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Func, IntegerField, OuterRef, Q, QuerySet, UUIDField
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
    WithdrawnVote,
)
from evalhub.campaigns.serving.leasing import (
    CAMPAIGN_UNREAD_FIELDS,
    LeaseNotYours,
    active_leases,
    check_open_for_rating,
    expire_stale_leases,
    may_rate,
    rater_annotations,
    rating_param,
    rating_params,
    rating_values,
)
from evalhub.core.errors import EvalHubError
from evalhub.core.prepared import Param, PreparedInsert, PreparedQuery, PreparedUpdate

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


# The advisory locks of vote ids (PostgreSQL): the first key of pg_advisory_xact_lock(int, int)
# ("vote" in ASCII), the second folded from the id (:func:`_vote_id_key`).
VOTE_ID_LOCK = 0x766F7465
_VOTE_ID_KEY = Param("vote_id_key", IntegerField())
_CLIENT_ID = Param("client_id", UUIDField())


def _vote_id_key(client_id: uuid.UUID) -> int:
    """The id's 128 bits folded into a signed 32-bit key (ids sharing a key merely wait on each
    other's lock)."""
    folded = 0
    for shift in range(0, 128, 32):
        folded ^= (client_id.int >> shift) & 0xFFFFFFFF
    return folded - (1 << 32) if folded >= 1 << 31 else folded


class _LockVoteId(Func):
    """Take the vote id's lock (till the transaction ends) as a column of the lease's locking
    read: no query more per vote. An uncorrelated subquery, run once, when the row is read."""

    template = f"(SELECT 1 FROM pg_advisory_xact_lock({VOTE_ID_LOCK}, %(expressions)s))"
    output_field = IntegerField()


def _lock_vote_id(client_id: uuid.UUID) -> None:
    """Take the vote id's lock, as the vote's locking read takes it (PostgreSQL; SQLite's
    IMMEDIATE transactions are serialised whole)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                           [VOTE_ID_LOCK, _vote_id_key(client_id)])


def _locked_lease(excluded: int) -> QuerySet[Lease]:
    """The voter's lease, locked, with its campaign, its task and the rater annotations; on
    PostgreSQL the vote id's lock taken too (:func:`_withdraw`).

    Values (bound by :data:`_LOCK`): lease_id, annotator_id, campaign_id, now, vote_id_key,
    and the leases the page shows ``shown0..`` (the voted one first).
    """
    annotator = rating_param("annotator_id")
    vote_id = ({"vote_id_locked": _LockVoteId(_VOTE_ID_KEY)}
               if connection.vendor == "postgresql" else {})
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
                exclude=rating_params("shown", excluded), now=rating_param("now")))
            # Held till the vote commits; an undo waiting for it holds no row lock
            # (_withdraw), so taking it beside the row locks deadlocks nothing.
            .annotate(**vote_id)[:1])


_LOCK = PreparedQuery(_locked_lease)
# The vote's writes, compiled once per connection (the number of criteria is the insert's
# shape): the judgments, the lease closed, the task's counter incremented. The lease is closed
# only if the vote id was not withdrawn (no row updated: the vote is refused, rolled back).
_JUDGMENTS = PreparedInsert(Judgment)
_CLOSE_LEASE = PreparedUpdate(lambda: (
    Lease.objects.filter(pk=rating_param("lease_id")).exclude(Exists(
        WithdrawnVote.objects.filter(annotator_id=rating_param("annotator_id"),
                                     client_id=_CLIENT_ID))),
    {"status": LeaseStatus.COMPLETED, "closed_at": rating_param("now")}))
_COUNT_VOTE = PreparedUpdate(lambda: (
    ComparisonTask.objects.filter(pk=rating_param("task_id")),
    {"judgments_count": F("judgments_count") + 1}))


def _lock_lease(*, annotator: AbstractBaseUser, campaign_id: int, lease_id: uuid.UUID,
                client_id: uuid.UUID, exclude: set[uuid.UUID]) -> Lease:
    """The voter's lease, locked, with its campaign and the rater annotations, and the vote
    id's lock (one query)."""
    from evalhub.campaigns.selectors import campaign_for_rater

    shown = [lease_id, *(pk for pk in exclude if pk != lease_id)]
    found = _LOCK.run(len(shown), lease_id=lease_id, annotator_id=annotator.pk,
                      campaign_id=campaign_id, now=timezone.now(),
                      vote_id_key=_vote_id_key(client_id),
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
    VoteUndone (409, code ``vote_undone``) for a vote resent after it was undone, or under an
    id its annotator withdrew before it arrived (an undo that found no vote), EvalHubError
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
                                lease_id=lease_id, client_id=client_id,
                                exclude=exclude or set())
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
            if not _CLOSE_LEASE.run(lease_id=lease.pk, now=timezone.now(),
                                    annotator_id=annotator.pk, client_id=client_id):
                # Its annotator withdrew the id before it arrived (vote_undo found no vote):
                # refused as a vote resent after its undo; the judgments go with the rollback.
                raise VoteUndone(VOTE_UNDONE)
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
                                lease_id=lease_id, client_id=client_id,
                                exclude=exclude or set())
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
    vote), and EvalHubError (:data:`UNDO_NOTHING`) for an id of no vote of this annotator here:
    the id is then withdrawn (:func:`_withdraw`), and a vote arriving under it afterwards is
    refused as undone (:class:`VoteUndone`, 409) instead of counting.
    """
    check_open_for_rating(campaign)
    undone = _retract(annotator=annotator, campaign=campaign, client_id=client_id)
    if undone is None:
        if _withdraw(annotator=annotator, campaign=campaign, client_id=client_id):
            raise EvalHubError(UNDO_NOTHING)
        # The annotator has a vote under this id here after all: stored while _withdraw waited
        # for its lock (retracted now), or undone already (by an earlier or concurrent undo).
        undone = _retract(annotator=annotator, campaign=campaign, client_id=client_id)
        if undone is None:
            raise AlreadyUndone(UNDO_ALREADY)
    after_vote(campaign, kind="undo")  # the leaderboards must forget the retracted vote too
    return undone


def _retract(*, annotator: AbstractBaseUser, campaign: Campaign, client_id: uuid.UUID
             ) -> Undone | None:
    """Retract the annotator's live vote under ``client_id`` (:func:`vote_undo`); None when
    there is none. Raises :class:`AlreadyUndone` when a concurrent undo retracted it first."""
    live = Judgment.objects.filter(client_id=client_id, annotator=annotator, campaign=campaign,
                                   retracted_at__isnull=True)
    with transaction.atomic():
        # The vote's task locked first, as a vote and the serving walk lock it, before anything
        # is written: a concurrent undo of the same vote waits here for the first to commit.
        first = (live.select_related("task").select_for_update(of=("task",), no_key=True)
                 .first())
        if first is None:
            return None
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
        expire_stale_leases(task_id=first.task_id, now=now)
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
    return undone


def _withdraw(*, annotator: AbstractBaseUser, campaign: Campaign, client_id: uuid.UUID
              ) -> bool:
    """Withdraw a vote id under which the annotator has no vote here (undone or live): record
    it (:class:`WithdrawnVote`; once per annotator and id), so that the vote, should it arrive
    later, is refused. False, recording nothing, when they do have a vote under it.

    Why an undo and its vote never both succeed, in two processes at once: both take the vote
    id's lock (a transaction-level advisory lock on PostgreSQL, :func:`_vote_id_key`; the vote
    in its locking read, :func:`_lock_lease`) and hold it until they commit, and each looks for
    the other's row in a statement that starts after its lock is taken, so it sees what the
    other committed. The vote holding the lock first: this lookup, waiting for it, finds the
    vote (and :func:`vote_undo` retracts it). The undo first: the vote's lease update, which
    closes the lease only while the id is not withdrawn (:data:`_CLOSE_LEASE`), finds the record
    and the vote is refused (:class:`VoteUndone`) and rolled back. The undo holds no row lock
    while it waits for the id's lock, nor waits for any once it holds it, so no deadlock. On
    SQLite, IMMEDIATE transactions run one at a time: the same order, without the lock.

    The records are kept: one small row per undo of a vote that never arrived (rare), deleted
    with its campaign or annotator; the page's outbox may resend a vote after any time.
    """
    with transaction.atomic():
        _lock_vote_id(client_id)
        if Judgment.objects.filter(client_id=client_id, annotator=annotator,
                                   campaign=campaign).exists():
            return False
        WithdrawnVote.objects.bulk_create(
            [WithdrawnVote(annotator=annotator, campaign=campaign, client_id=client_id)],
            ignore_conflicts=True)  # withdrawn before (an undo resent, another campaign)
    return True
