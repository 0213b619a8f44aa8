"""Recording votes exactly once, and undoing the last one.

A vote carries a client-generated id; a retry or a double press with the same id returns the
stored vote instead of counting again. A vote is accepted only on a task currently leased to
the voter (or whose lease expired without anyone else taking the task).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from evalhub.campaigns.leasing import LeaseNotYours
from evalhub.campaigns.models import (
    Campaign,
    ComparisonTask,
    JudgeKind,
    Judgment,
    Lease,
    LeaseStatus,
    Outcome,
)
from evalhub.core.errors import EvalHubError

# What the page sends, in displayed terms.
DISPLAYED_ANSWERS = ("left", "right", "tie", "both_bad")
MAX_LATENCY_MS = 24 * 3600 * 1000

# Refusals, shared with the SQL path (rating_db.py) so both say the same thing.
LEASE_TAKEN = "Your lease on this task expired and it was given to someone else."
ALREADY_JUDGED = "You already judged this task."
FOREIGN_VOTE_ID = "This vote id belongs to someone else."


class VoteConflict(EvalHubError):
    """The task was already judged by this annotator under another vote id."""


@dataclass(frozen=True)
class VoteResult:
    client_id: uuid.UUID
    created: bool  # False when the vote id was seen before (an idempotent retry)
    judgments: dict[str, str]  # criterion -> canonical outcome


def to_outcome(answer: str, *, a_side: str) -> str:
    """Map a displayed answer to the canonical outcome, given where image A was shown."""
    if answer in ("tie", "both_bad"):
        return answer
    if answer not in ("left", "right"):
        raise EvalHubError(f"Unknown answer {answer!r}; expected one of {DISPLAYED_ANSWERS}.")
    return Outcome.A if answer == a_side else Outcome.B


def _existing(client_id: uuid.UUID, annotator: AbstractBaseUser) -> VoteResult | None:
    rows = list(Judgment.objects.filter(client_id=client_id).values_list(
        "annotator_id", "criterion", "outcome"))
    if not rows:
        return None
    if rows[0][0] != annotator.pk:
        raise EvalHubError(FOREIGN_VOTE_ID)
    return VoteResult(client_id, False, {criterion: outcome for _, criterion, outcome in rows})


def check_latency(latency_ms: int | None) -> None:
    if latency_ms is not None and not 0 <= latency_ms <= MAX_LATENCY_MS:
        raise EvalHubError("latency_ms is out of range.")


def closed_lease_refusal(status: str) -> EvalHubError:
    if status == LeaseStatus.COMPLETED:
        return VoteConflict(ALREADY_JUDGED)
    return EvalHubError(f"This task was {status}; it no longer takes a vote.")


def validate_answers(campaign: Campaign, answers: dict[str, str]) -> None:
    missing = [c for c in campaign.criteria if c not in answers]
    extra = [c for c in answers if c not in campaign.criteria]
    if missing or extra:
        raise EvalHubError(
            f"Answer every criterion of this campaign ({', '.join(campaign.criteria)}); "
            f"missing {missing or 'none'}, unknown {extra or 'none'}."
        )


def vote_submit(*, annotator: AbstractBaseUser, lease_id, client_id: uuid.UUID,
                answers: dict[str, str], latency_ms: int | None = None,
                campaign: Campaign | None = None) -> VoteResult:
    """Store one vote (one judgment per criterion) exactly once.

    The lease row is locked first, so a retry racing with its original waits for it and then
    finds the stored vote instead of counting again.
    """
    check_latency(latency_ms)
    try:
        with transaction.atomic():
            lease = (Lease.objects.select_for_update(of=("self",)).select_related("campaign")
                     .filter(pk=lease_id).first())
            if lease is None or lease.annotator_id != annotator.pk or (
                    campaign is not None and lease.campaign_id != campaign.pk):
                raise LeaseNotYours("This task is not leased to you.")
            if (seen := _existing(client_id, annotator)) is not None:
                return seen
            validate_answers(lease.campaign, answers)
            judgments = {c: to_outcome(a, a_side=lease.a_side) for c, a in answers.items()}
            _check_lease_accepts_vote(lease)
            Judgment.objects.bulk_create([
                Judgment(task_id=lease.task_id, campaign_id=lease.campaign_id,
                         criterion=criterion, outcome=outcome, judge_kind=JudgeKind.HUMAN,
                         annotator=annotator, lease=lease, a_side=lease.a_side,
                         latency_ms=latency_ms, client_id=client_id)
                for criterion, outcome in judgments.items()
            ])
            Lease.objects.filter(pk=lease.pk).update(status=LeaseStatus.COMPLETED,
                                                     closed_at=timezone.now())
            ComparisonTask.objects.filter(pk=lease.task_id).update(
                judgments_count=F("judgments_count") + 1)
    except IntegrityError as exc:
        # This annotator already judged the task under another vote id (or a vote id clash).
        if (seen := _existing(client_id, annotator)) is not None:
            return seen
        raise VoteConflict(ALREADY_JUDGED) from exc
    after_vote(lease.campaign)
    return VoteResult(client_id, True, judgments)


def _check_lease_accepts_vote(lease: Lease) -> None:
    if lease.status == LeaseStatus.ACTIVE:
        return
    if lease.status == LeaseStatus.EXPIRED:
        # A late vote still counts if nobody else has taken the task meanwhile.
        taken = Lease.objects.filter(task_id=lease.task_id, status=LeaseStatus.ACTIVE).exclude(
            pk=lease.pk).exists()
        if not taken:
            return
        raise EvalHubError(LEASE_TAKEN)
    raise closed_lease_refusal(lease.status)


def after_vote(campaign: Campaign) -> None:
    from evalhub.campaigns.signals import vote_recorded

    vote_recorded.send(sender=Campaign, campaign=campaign)


def vote_undo(*, annotator: AbstractBaseUser, client_id: uuid.UUID) -> Lease:
    """Retract a vote of this annotator and lease its task back to them for a new answer."""
    judgments = Judgment.objects.filter(client_id=client_id, annotator=annotator,
                                        retracted_at__isnull=True)
    first = judgments.select_related("lease", "campaign").first()
    if first is None:
        raise EvalHubError("No such vote to undo (already undone, or not yours).")
    with transaction.atomic():
        judgments.update(retracted_at=timezone.now())
        ComparisonTask.objects.filter(pk=first.task_id).update(
            judgments_count=F("judgments_count") - 1)
        Lease.objects.filter(task_id=first.task_id, status=LeaseStatus.ACTIVE).update(
            status=LeaseStatus.EXPIRED, closed_at=timezone.now())
        Lease.objects.filter(pk=first.lease_id).update(status=LeaseStatus.EXPIRED)
        return Lease.objects.create(
            task_id=first.task_id, campaign=first.campaign, annotator=annotator,
            a_side=first.a_side or "left",
            expires_at=timezone.now() + timedelta(seconds=first.campaign.lease_seconds),
        )


__all__ = ["LeaseNotYours", "VoteConflict", "VoteResult", "vote_submit", "vote_undo"]
