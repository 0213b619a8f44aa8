"""manage.py export_rankings <campaign> --output FILE [--format raw|dpo] [--include-excluded]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from evalhub.campaigns.cli import get_campaign
from evalhub.core.cli import reports_domain_errors
from evalhub.exports.kwise import KWISE_FORMATS, KWISE_RAW
from evalhub.exports.services import rankings_to_path


class Command(BaseCommand):
    help = ("Export a best-of-K campaign's votes as JSON Lines, as GET /api/v1/campaigns/<id>/"
            "export/rankings/ does: raw, one row per ranking as stored; dpo, the preference "
            "pairs each ranking states, weighted to sum to 1 per vote (docs/exports.md).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign", type=int, help="campaign id")
        parser.add_argument("--format", choices=KWISE_FORMATS, default=KWISE_RAW,
                            help=f"default {KWISE_RAW}")
        parser.add_argument("--output", required=True, type=Path, help="JSON Lines file")
        parser.add_argument("--overwrite", action="store_true",
                            help="replace --output if it exists (else refused)")
        parser.add_argument("--include-excluded", action="store_true",
                            help="keep annotators excluded by quality control")

    @reports_domain_errors
    def handle(self, *args, **opts) -> None:
        campaign = get_campaign(opts["campaign"])
        rows = rankings_to_path(campaign=campaign, kind=opts["format"], output=opts["output"],
                                overwrite=opts["overwrite"],
                                include_excluded=opts["include_excluded"])
        self.stdout.write(self.style.SUCCESS(f"Wrote {rows} rows to {opts['output']}."))
