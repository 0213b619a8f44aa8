"""manage.py campaign <id> [--per-annotator] [--rename NAME] [--instructions-file PATH]
[--set-status STATUS]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from evalhub.campaigns.cli import describe, get_campaign, instructions_from_file, progress_lines
from evalhub.campaigns.models import Campaign, CampaignStatus
from evalhub.campaigns.services import TRANSITIONS, campaign_set_status, campaign_update
from evalhub.core.cli import model_text, reports_domain_errors
from evalhub.core.text import counted

# The statuses a person can ask for (building and failed are the builder's), as plain
# strings: argparse lists the choices' repr() when it refuses one (CampaignStatus.ACTIVE...).
SETTABLE = sorted({status.value for targets in TRANSITIONS.values() for status in targets})


class Command(BaseCommand):
    help = ("Show a campaign's status and progress (tasks, votes, annotators); rename it "
            "(--rename) or replace its instructions (--instructions-file), in any status; "
            "open a draft, pause, resume or close it with --set-status.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign_id", type=int, help="campaign id")
        parser.add_argument("--per-annotator", action="store_true",
                            help="also one line per annotator who voted")
        parser.add_argument("--rename", metavar="NAME", type=model_text(Campaign, "name"),
                            help="the campaign's new name (unique in the project)")
        parser.add_argument("--instructions-file", metavar="PATH", type=Path,
                            help="a UTF-8 text file whose text replaces the instructions "
                                 "annotators see (an empty file removes them)")
        parser.add_argument("--set-status", choices=SETTABLE,
                            help=f"{CampaignStatus.ACTIVE} opens a draft or resumes a paused "
                                 f"campaign; {CampaignStatus.PAUSED} stops serving; "
                                 f"{CampaignStatus.CLOSED} ends it for good")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        campaign = get_campaign(options["campaign_id"])
        instructions = (instructions_from_file(options["instructions_file"])
                        if options["instructions_file"] is not None else None)
        said = []
        # All or nothing: a status change refused after a rename leaves the name as it was.
        with transaction.atomic():
            if options["rename"] is not None or instructions is not None:
                before = campaign.name, campaign.instructions
                campaign_update(campaign=campaign, name=options["rename"],
                                instructions=instructions)
                # What changed, not what was asked: the same name (or text) changes nothing.
                if options["rename"] is not None:
                    said.append(f"Campaign {campaign.pk}: renamed {before[0]!r} -> "
                                f"{campaign.name!r}." if campaign.name != before[0] else
                                f"Campaign {campaign.pk}: already named {campaign.name!r}.")
                if instructions is not None:
                    said.append(f"Campaign {campaign.pk}: instructions replaced "
                                f"({counted(len(instructions), 'character')})."
                                if campaign.instructions != before[1] else
                                f"Campaign {campaign.pk}: instructions unchanged.")
            if options["set_status"]:
                before = campaign.status
                campaign_set_status(campaign=campaign, status=options["set_status"],
                                    from_status=before)
                said.append(f"Campaign {campaign.pk}: {before} -> {campaign.status}.")
        for line in said:
            self.stdout.write(self.style.SUCCESS(line))
        self.stdout.write(f"{describe(campaign)} Project {campaign.project.slug}.")
        for line in progress_lines(campaign, annotators=options["per_annotator"]):
            self.stdout.write(line)
