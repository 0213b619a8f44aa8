"""What the annotator API does: lease the next task, and vote (then lease the next task).

One service, two paths with the same rules: on PostgreSQL a request is one SQL function call
(rating_db.py: rater check, vote, vote count and next lease in one round trip); elsewhere, or
with EVALHUB_RATING_SQL off, the ORM services (raters.py, voting.py, leasing.py).
tests/campaigns runs the rating specification against both.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError

from evalhub.campaigns.leasing import (
    NothingToRate,
    campaign_remaining,
    check_open_for_rating,
    lease_next,
)
from evalhub.campaigns.models import Campaign, Criterion, JudgeKind, Judgment
from evalhub.campaigns.payloads import lease_payload
from evalhub.campaigns.raters import Rater, rater_campaign
from evalhub.campaigns.rating_db import db_rate_next, db_rate_vote, next_payload, sql_path_enabled
from evalhub.campaigns.voting import VoteResult, after_vote, check_latency, vote_submit
from evalhub.core.errors import EvalHubError

REMAINING_CACHE_SECONDS = 5


@dataclass(frozen=True)
class Vote:
    """One vote as the page sends it, in displayed terms (left/right/tie/both_bad)."""

    client_id: uuid.UUID
    lease_id: uuid.UUID
    answers: dict[str, str]
    latency_ms: int | None = None


@dataclass(frozen=True)
class VoteOutcome:
    result: VoteResult
    progress: dict[str, int]
    next: dict[str, Any] | None  # a task payload or {"done": True, ...}; None when not asked


def progress(*, campaign_id: int, annotator_id: int, my_votes: int | None = None
             ) -> dict[str, int]:
    """The rater's vote count and the judgments the campaign still needs."""
    if my_votes is None:
        my_votes = Judgment.objects.filter(
            campaign_id=campaign_id, annotator_id=annotator_id, criterion=Criterion.OVERALL,
            judge_kind=JudgeKind.HUMAN, retracted_at__isnull=True).count()
    # The campaign-wide sum scans every task; a few seconds of staleness is fine for a counter.
    key = f"campaign-remaining:{campaign_id}"
    remaining = cache.get(key)
    if remaining is None:
        remaining = campaign_remaining(campaign_id=campaign_id)
        cache.set(key, remaining, timeout=REMAINING_CACHE_SECONDS)
    return {"my_votes": my_votes, "remaining": remaining}


def _orm_next(campaign: Campaign, annotator, exclude: set[uuid.UUID] | None) -> dict[str, Any]:
    try:
        return lease_payload(lease_next(campaign=campaign, annotator=annotator, exclude=exclude))
    except NothingToRate as exc:
        return {"detail": exc.message, "done": True}


def rate_next(*, rater: Rater, campaign_id: int, exclude: set[uuid.UUID] | None = None
              ) -> dict[str, Any]:
    """Lease a task (or return one the rater holds and the page does not show yet).

    Returns the task payload, or ``{"done": True, "detail": ...}`` when nothing is left for
    this rater. Raises EvalHubError when the campaign is not open for rating, BadCredentials
    or NoSuchCampaign when the rater may not rate it.
    """
    if sql_path_enabled():
        answer = db_rate_next(rater=rater, campaign_id=campaign_id, exclude=exclude)
        check_open_for_rating(answer.campaign)
        return next_payload(answer.campaign, answer.body["next"])
    annotator, campaign = rater_campaign(rater=rater, campaign_id=campaign_id)
    check_open_for_rating(campaign)
    return _orm_next(campaign, annotator, exclude)


def rate_vote(*, rater: Rater, campaign_id: int, vote: Vote, want_next: bool = False,
              exclude: set[uuid.UUID] | None = None) -> VoteOutcome:
    """Store the vote exactly once and, when asked, lease the next task in the same call.

    A retry with the same client id returns the stored vote (``result.created`` False). The
    next task is ``{"done": True, ...}`` when nothing is left or the campaign is not open: the
    vote itself still counts.
    """
    check_latency(vote.latency_ms)
    if sql_path_enabled():
        try:
            answer = db_rate_vote(rater=rater, campaign_id=campaign_id, lease_id=vote.lease_id,
                                  client_id=vote.client_id, answers=vote.answers,
                                  latency_ms=vote.latency_ms, want_next=want_next,
                                  exclude=exclude)
        except IntegrityError:
            pass  # a race the function cannot settle: the ORM path below answers it exactly
        else:
            body = answer.body
            result = VoteResult(vote.client_id, body["created"], body["judgments"])
            if result.created:
                after_vote(answer.campaign)
            return VoteOutcome(
                result,
                progress(campaign_id=campaign_id, annotator_id=answer.rater_id,
                         my_votes=body["my_votes"]),
                next_payload(answer.campaign, body["next"]) if want_next else None)
    annotator, campaign = rater_campaign(rater=rater, campaign_id=campaign_id)
    result = vote_submit(annotator=annotator, lease_id=vote.lease_id, client_id=vote.client_id,
                         answers=vote.answers, latency_ms=vote.latency_ms, campaign=campaign)
    following = None
    if want_next:
        try:
            check_open_for_rating(campaign)
            following = _orm_next(campaign, annotator, exclude)
        except EvalHubError as exc:
            following = {"detail": exc.message, "done": True}
    return VoteOutcome(result, progress(campaign_id=campaign.pk, annotator_id=annotator.pk),
                       following)
