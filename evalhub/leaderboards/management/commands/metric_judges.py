"""manage.py metric_judges <campaign_id> [--metric clip_score] [--epsilon E]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from evalhub.campaigns.cli import get_campaign
from evalhub.core.cli import reports_domain_errors
from evalhub.leaderboards.services import (
    JUDGE_METRICS,
    campaign_leaderboards_refresh,
    metric_judges_run,
)


class Command(BaseCommand):
    help = ("Cast one metric judgment per non-gold task of a campaign (higher score wins, tie "
            "below epsilon); idempotent. Then refresh the campaign's leaderboards.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign_id", type=int, help="campaign id")
        parser.add_argument("--metric", default="clip_score", choices=sorted(JUDGE_METRICS),
                            help="the per-image metric that judges each pair (default "
                                 "clip_score)")
        parser.add_argument("--epsilon", type=float, default=None,
                            help="score difference below which the pair is a tie (default: "
                                 "the metric's, "
                                 f"{JUDGE_METRICS['clip_score'].epsilon} for clip_score)")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        campaign = get_campaign(options["campaign_id"])
        report = metric_judges_run(campaign=campaign, metric=options["metric"],
                                   epsilon=options["epsilon"])
        campaign_leaderboards_refresh(campaign=campaign)
        flag = "" if report.calibrated else " (uncalibrated: values from random weights)"
        self.stdout.write(self.style.SUCCESS(
            f"metric judge {report.metric}{flag} on {report.tasks} tasks, criteria "
            f"{', '.join(report.criteria)}: {report.created} cast, {report.updated} changed, "
            f"{report.unchanged} unchanged, {report.skipped} tasks skipped (no value)."))
