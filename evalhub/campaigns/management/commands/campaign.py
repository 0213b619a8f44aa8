"""manage.py campaign <id> [--per-annotator] [--set-status STATUS]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from evalhub.campaigns.cli import describe, get_campaign, progress_lines
from evalhub.campaigns.models import CampaignStatus
from evalhub.campaigns.services import TRANSITIONS, campaign_set_status
from evalhub.core.cli import reports_domain_errors

# The statuses a person can ask for (building and failed are the builder's), as plain
# strings: argparse lists the choices' repr() when it refuses one (CampaignStatus.ACTIVE...).
SETTABLE = sorted({status.value for targets in TRANSITIONS.values() for status in targets})


class Command(BaseCommand):
    help = ("Show a campaign's status and progress (tasks, votes, annotators); open a draft, "
            "pause, resume or close it with --set-status.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign_id", type=int, help="campaign id")
        parser.add_argument("--per-annotator", action="store_true",
                            help="also one line per annotator who voted")
        parser.add_argument("--set-status", choices=SETTABLE,
                            help=f"{CampaignStatus.ACTIVE} opens a draft or resumes a paused "
                                 f"campaign; {CampaignStatus.PAUSED} stops serving; "
                                 f"{CampaignStatus.CLOSED} ends it for good")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        campaign = get_campaign(options["campaign_id"])
        if options["set_status"]:
            before = campaign.status
            campaign_set_status(campaign=campaign, status=options["set_status"],
                                from_status=before)
            self.stdout.write(self.style.SUCCESS(
                f"Campaign {campaign.pk}: {before} -> {campaign.status}."))
        self.stdout.write(f"{describe(campaign)} Project {campaign.project.slug}.")
        for line in progress_lines(campaign, annotators=options["per_annotator"]):
            self.stdout.write(line)
