"""Signal receivers: a human vote schedules a (debounced) leaderboard refresh."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache

from evalhub.campaigns.models import Campaign

logger = logging.getLogger(__name__)


def on_vote_recorded(sender: Any, campaign: Campaign, **kwargs: Any) -> None:
    from evalhub.leaderboards.services import leaderboard_refresh_schedule, refresh_delay_seconds

    # Most votes arrive while a refresh is already scheduled: a per-process cache entry
    # answers that without touching the database; the DB claim stays the cross-process truth.
    if not cache.add(f"leaderboard-refresh-claimed:{campaign.pk}", 1,
                     timeout=max(1, refresh_delay_seconds() // 2)):
        return
    try:
        leaderboard_refresh_schedule(campaign=campaign)
    except Exception:  # a leaderboard problem must never fail a vote
        logger.exception("could not schedule the leaderboard refresh of campaign %s",
                         campaign.pk)
