"""Signal receivers: a human vote schedules a (debounced) leaderboard refresh."""

from __future__ import annotations

import logging
from typing import Any

from evalhub.campaigns.models import Campaign

logger = logging.getLogger(__name__)


def on_vote_recorded(sender: Any, campaign: Campaign, **kwargs: Any) -> None:
    from evalhub.leaderboards.services import leaderboard_refresh_schedule

    try:
        leaderboard_refresh_schedule(campaign=campaign)
    except Exception:  # a leaderboard problem must never fail a vote
        logger.exception("could not schedule the leaderboard refresh of campaign %s",
                         campaign.pk)
