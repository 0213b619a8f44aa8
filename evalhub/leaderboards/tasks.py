"""Celery tasks (default queue): thin wrappers over idempotent services."""

from __future__ import annotations

from celery import shared_task

from evalhub.campaigns.models import Campaign


@shared_task(name="evalhub.leaderboards.refresh")
def refresh_leaderboards(campaign_id: int) -> int:
    """Recompute the default leaderboards of a campaign; returns the number of snapshots."""
    from evalhub.leaderboards.services import campaign_leaderboards_refresh

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    return len(campaign_leaderboards_refresh(campaign=campaign))


@shared_task(name="evalhub.leaderboards.metric_judges")
def run_metric_judges(campaign_id: int, metric: str = "clip_score",
                      epsilon: float | None = None) -> dict:
    """Cast metric judgments on every non-gold task, then refresh the leaderboards."""
    from evalhub.leaderboards.services import campaign_leaderboards_refresh, metric_judges_run

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return {}
    report = metric_judges_run(campaign=campaign, metric=metric, epsilon=epsilon)
    campaign_leaderboards_refresh(campaign=campaign)
    return report.as_dict()
