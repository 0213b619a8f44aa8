"""What the annotator API does: lease the next task, and vote (then lease the next task).

The one implementation of the rating rules, on SQLite and PostgreSQL alike: leasing.py serves
tasks, voting.py records votes. The caller is an authenticated user (session or API token,
checked by the API); membership of the campaign's project is checked here, inside the queries
that do the work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache

from evalhub.campaigns.building.images import campaign_images_preparing
from evalhub.campaigns.models import Campaign
from evalhub.campaigns.serving.leasing import (
    HoldingMax,
    NothingToRate,
    RaterState,
    campaign_for_rating,
    campaign_remaining,
    check_open_for_rating,
    held_by_others,
    lease_next,
)
from evalhub.campaigns.serving.payloads import lease_payload
from evalhub.campaigns.serving.voting import Undone, VoteResult, vote_store, vote_undo
from evalhub.core.errors import EvalHubError

# What next/ answers (``code``, with ``done`` false) when nothing can be leased to the rater now
# but tasks they may still rate are held by other annotators: ask again later.
NOTHING_FREE = "nothing_free"
NOTHING_FREE_DETAIL = ("Every task left for you is being rated by someone else right now; "
                       "one comes back if its lease ends before it is rated.")

# The campaign-wide sum of judgments still needed reads every task: a few seconds of staleness
# is fine for a counter, and it keeps that read out of almost every vote.
REMAINING_CACHE_SECONDS = 5


@dataclass(frozen=True)
class Vote:
    """One vote as the page sends it, in displayed terms (left/right/tie/both_bad)."""

    client_id: uuid.UUID
    lease_id: uuid.UUID
    answers: dict[str, str]
    latency_ms: int | None = None
    # Best of K: criterion -> the picked slots (0..K-1 as displayed), best first.
    rankings: dict[str, list[int]] | None = None


@dataclass(frozen=True)
class Progress:
    my_votes: int  # the rater's live overall judgments in the campaign
    # Judgments the campaign still needs from all annotators (at most REMAINING_CACHE_SECONDS
    # old; with one cache per process, another process's votes of those seconds are missing):
    # not what this rater can still give, which would cost a read of every task per vote. The
    # page says so ("N left in the campaign", its tooltip saying whose and how fresh).
    remaining: int


@dataclass(frozen=True)
class VoteOutcome:
    result: VoteResult
    progress: Progress
    next: dict[str, Any] | None  # a task payload or {"done": True, ...}; None when not asked
    # The rater's newer leases of the voted task that a late vote closed (answered by it):
    # the page drops them (voting.StoredVote.closed).
    closed: tuple[uuid.UUID, ...] = ()


def _remaining_key(campaign_id: int) -> str:
    return f"campaign-remaining:{campaign_id}"


def remaining(campaign_id: int) -> int:
    key = _remaining_key(campaign_id)
    value = cache.get(key)
    if value is None:
        value = campaign_remaining(campaign_id=campaign_id)
        cache.set(key, value, timeout=REMAINING_CACHE_SECONDS)
    return value


def _count_in_remaining(campaign_id: int) -> int | None:
    """One judgment fewer needed: the cached count follows each vote at once (every process's
    votes with a shared cache, this process's otherwise) instead of at its next refresh.

    Returns the count after this vote (what :func:`remaining` would read next), or None when
    it is not cached."""
    key = _remaining_key(campaign_id)
    try:
        left = cache.decr(key)
    except ValueError:  # not cached: the next read counts it
        return None
    if left < 0:
        cache.delete(key)
        return None
    return left


def rate_undo(*, annotator: AbstractBaseUser, campaign: Campaign, client_id: uuid.UUID
              ) -> Undone:
    """Retract the annotator's vote (voting.vote_undo) and lease its task back to them (no
    lease, and why, when another annotator holds it now or it is a retired set); the cached
    remaining count is dropped, so the next read counts the retracted vote again."""
    undone = vote_undo(annotator=annotator, campaign=campaign, client_id=client_id)
    cache.delete(_remaining_key(campaign.pk))
    return undone


def nothing_free_payload() -> dict[str, Any]:
    """No task now, but not done: ``code`` nothing_free (the page waits and asks again)."""
    return {"done": False, "code": NOTHING_FREE, "detail": NOTHING_FREE_DETAIL}


def _next_payload(campaign: Any, annotator: AbstractBaseUser, state: RaterState,
                  released: int = 0) -> dict[str, Any]:
    # Large images are served only once their tiles exist (no query once the campaign is ready).
    if (preparing := campaign_images_preparing(campaign)) is not None:
        return preparing.next_payload()
    try:
        return lease_payload(lease_next(campaign=campaign, annotator=annotator, state=state,
                                        released=released))
    except HoldingMax as exc:  # two tasks in flight (skips on their way): not done
        return {**nothing_free_payload(), "detail": exc.message}
    except NothingToRate as exc:
        if held_by_others(campaign=campaign, annotator=annotator):
            return nothing_free_payload()
        return {"detail": exc.message, "done": True}


def refusal_payload(exc: EvalHubError) -> dict[str, Any]:
    """No task because the campaign refuses (paused, closed): ``done`` with the reason, and the
    error's ``code`` (``campaign_not_open``) so that the page says so instead of "finished"."""
    return {"detail": exc.message, "done": True, **({"code": exc.code} if exc.code else {})}


def rate_next(*, annotator: AbstractBaseUser, campaign_id: int,
              exclude: set[uuid.UUID] | None = None) -> dict[str, Any]:
    """Lease a task (or return one the rater holds and the page does not show yet).

    Returns the task payload, or ``{"done": True, "detail": ...}`` when nothing is left for
    this rater, or ``{"done": False, "code": "nothing_free", "detail": ...}`` when the tasks
    left for this rater are all leased to other annotators now (ask again later), or
    ``{"done": False, "preparing": {"done", "total"}, "detail": ...}`` while the campaign's
    large images wait for their tiles. Raises EvalHubError when the campaign is not
    open for rating, NoSuchCampaign when the rater has no role in its project.
    """
    campaign = campaign_for_rating(annotator=annotator, campaign_id=campaign_id,
                                   exclude=exclude or ())
    check_open_for_rating(campaign)
    return _next_payload(campaign, annotator, campaign)


def rate_vote(*, annotator: AbstractBaseUser, campaign_id: int, vote: Vote,
              want_next: bool = False, exclude: set[uuid.UUID] | None = None) -> VoteOutcome:
    """Store the vote exactly once and, when asked, lease the next task in the same call.

    A retry with the same client id returns the stored vote (``result.created`` False). The
    next task is ``{"done": True, ...}`` when nothing is left or the campaign is not open: the
    vote itself still counts.
    """
    stored = vote_store(annotator=annotator, campaign_id=campaign_id, lease_id=vote.lease_id,
                        client_id=vote.client_id, answers=vote.answers,
                        latency_ms=vote.latency_ms, exclude=exclude, rankings=vote.rankings)
    left = None
    if stored.result.created and not stored.lease.task.is_gold:
        left = _count_in_remaining(campaign_id)
    following = None
    if want_next:
        lease = stored.lease
        try:
            following = _next_payload(lease.campaign, annotator, lease,
                                      released=stored.released)
        except EvalHubError as exc:
            following = refusal_payload(exc)
    return VoteOutcome(stored.result, Progress(
        stored.rater_votes, left if left is not None else remaining(campaign_id)), following,
        stored.closed)
