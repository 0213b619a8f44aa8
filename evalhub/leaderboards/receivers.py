"""Signal receivers: a human vote schedules a (debounced) leaderboard refresh."""

from __future__ import annotations

import logging
from typing import Any

from evalhub.campaigns.models import Campaign
from evalhub.core.cache import remembered_add

logger = logging.getLogger(__name__)

# How long a process answers "claimed" without asking the shared cache once it saw the claim
# (its own, or another process's refusing its add). After a refusal this may run up to this
# long past the claim's expiry: a vote then schedules nothing, as within the claim.
CLAIM_MEMO_SECONDS = 1.0


def on_vote_recorded(sender: Any, campaign: Campaign, **kwargs: Any) -> None:
    from evalhub.leaderboards.services import leaderboard_refresh_schedule, refresh_delay_seconds

    # Most votes arrive while a refresh is already scheduled: a shared cache entry answers
    # that without touching the database (and, remembered for a second, without a round trip
    # to the cache); the DB claim stays the cross-process truth.
    if not remembered_add(f"leaderboard-refresh-claimed:{campaign.pk}", 1,
                          max(1, refresh_delay_seconds() // 2),
                          remember_s=CLAIM_MEMO_SECONDS):
        return
    try:
        leaderboard_refresh_schedule(campaign=campaign)
    except Exception:  # a leaderboard problem must never fail a vote
        logger.exception("could not schedule the leaderboard refresh of campaign %s",
                         campaign.pk)
