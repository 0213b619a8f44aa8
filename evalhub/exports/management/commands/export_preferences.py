"""manage.py export_preferences: a campaign's votes as DPO JSONL, Pick-a-Pic Parquet or raw."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from evalhub.campaigns.cli import get_campaign
from evalhub.campaigns.models import Criterion
from evalhub.core.cli import model_text, reports_domain_errors, text_argument
from evalhub.core.errors import EvalHubError
from evalhub.core.text import counted
from evalhub.core.when import parse_when
from evalhub.exports.options import AGGREGATES, BUNDLES, FORMATS, ExportOptions
from evalhub.exports.services import export_to_path
from evalhub.prompts.models import Prompt


def _when(name: str, *, end_of_day: bool) -> Callable[[str], datetime]:
    """An argparse type reading --since/--until as the leaderboard does (core/when.py)."""

    def parse(value: str) -> datetime:
        try:
            return parse_when(value.strip(), name=name, end_of_day=end_of_day)
        except EvalHubError as exc:  # argparse's own one-line error, exit status 2
            raise argparse.ArgumentTypeError(exc.message) from exc

    return parse


def _keep_drop(value: str | None) -> bool | None:
    return None if value is None else value == "keep"


class Command(BaseCommand):
    help = ("Export a campaign's votes as preference data: dpo-jsonl, pickapic-parquet, "
            "raw-csv or raw-parquet (see docs/exports.md).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign", type=int, help="campaign id")
        parser.add_argument("--format", required=True, choices=FORMATS,
                            help="dpo-jsonl, pickapic-parquet, raw-csv or raw-parquet "
                                 "(docs/exports.md)")
        parser.add_argument("--output", required=True, type=Path,
                            help="data file, zip file (--bundle zip) or folder (--bundle folder)")
        parser.add_argument("--overwrite", action="store_true",
                            help="replace --output if it exists (else refused)")
        parser.add_argument("--bundle", choices=BUNDLES,
                            help="also write the referenced images and a README.md card")
        parser.add_argument("--card", type=Path, help="write the README.md card here too")
        parser.add_argument("--aggregate", choices=AGGREGATES, default="judgment",
                            help="one row per judgment (default) or per pair by majority")
        parser.add_argument("--criterion", action="append", choices=Criterion.values,
                            help="repeatable; default every criterion")
        parser.add_argument("--category", default="", help="prompt category",
                            type=model_text(Prompt, "category"))
        parser.add_argument("--since", type=_when("since", end_of_day=False),
                            help="votes at or after (ISO date or date-time, UTC if naive)")
        parser.add_argument("--until", type=_when("until", end_of_day=True),
                            help="votes before (ISO, UTC if naive; a date alone includes that "
                                 "whole day, as in the leaderboard)")
        parser.add_argument("--ties", choices=["keep", "drop"],
                            help="default: keep, except dpo-jsonl")
        parser.add_argument("--both-bad", choices=["keep", "drop"],
                            help="default: keep for raw formats, drop otherwise")
        parser.add_argument("--min-gold-accuracy", type=float,
                            help="keep annotators with at least this gold accuracy")
        parser.add_argument("--include-excluded", action="store_true",
                            help="keep annotators excluded by quality control")
        parser.add_argument("--min-agreement", type=float,
                            help="keep pairs whose majority has at least this vote share")
        parser.add_argument("--metric-judges", action="store_true",
                            help="also export metric judgments (judge=metric)")
        parser.add_argument("--include-gold", action="store_true",
                            help="also export gold (quality-control) pairs")
        parser.add_argument("--raw-usernames", action="store_true",
                            help="real usernames instead of pseudonyms")
        parser.add_argument("--no-image-bytes", action="store_true",
                            help="pickapic-parquet: jpg_0/jpg_1 hold references, not bytes")
        parser.add_argument("--base-url", default="", type=text_argument(2000),
                            help="image references become <base-url>/images/<sha256>.<ext>")
        parser.add_argument("--batch-size", type=int, default=10_000,
                            help="votes read and written at a time (default 10000)")

    @reports_domain_errors
    def handle(self, *args, **opts) -> None:
        campaign = get_campaign(opts["campaign"])
        options = ExportOptions(
            format=opts["format"], aggregate=opts["aggregate"],
            criteria=tuple(opts["criterion"] or ()), prompt_category=opts["category"],
            since=opts["since"], until=opts["until"],
            include_ties=_keep_drop(opts["ties"]), include_both_bad=_keep_drop(opts["both_bad"]),
            min_gold_accuracy=opts["min_gold_accuracy"],
            include_excluded=opts["include_excluded"], min_agreement=opts["min_agreement"],
            include_metric_judges=opts["metric_judges"], include_gold=opts["include_gold"],
            raw_usernames=opts["raw_usernames"], image_bytes=not opts["no_image_bytes"],
            base_url=opts["base_url"], bundle=opts["bundle"] or "",
            batch_size=opts["batch_size"],
        )
        summary = export_to_path(campaign=campaign, options=options, output=opts["output"],
                                 overwrite=opts["overwrite"], card=opts["card"])
        if summary.empty:
            self.stderr.write(self.style.WARNING(summary.message))
        # The bundle's files as it holds them: images, videos (a video campaign), or both
        # (Pick-a-Pic keeps the posters in its image columns).
        # Each count in the singular for exactly one ("1 row (1 vote, 1 annotator)").
        files = ([counted(summary.images, "image")] if summary.images or not summary.videos
                 else []) + ([counted(summary.videos, "video")] if summary.videos else [])
        self.stdout.write(self.style.SUCCESS(
            f"Wrote {counted(summary.rows, 'row')} ({counted(summary.votes, 'vote')}, "
            f"{counted(summary.annotators, 'annotator')}"
            + ("".join(f", {count}" for count in files) if options.bundle else "")
            + f") to {opts['output']} in {summary.seconds:.1f} s."
        ))
        if summary.uncalibrated:
            self.stdout.write(self.style.WARNING(
                f"{summary.uncalibrated} of the {summary.rows} rows are uncalibrated metric "
                "judgments (random weights; `uncalibrated: true`): do not train on them."))
