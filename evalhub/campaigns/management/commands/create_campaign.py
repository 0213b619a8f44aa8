"""manage.py create_campaign --project P --name N --runs RUN RUN ... [options]

The command-line twin of the campaign form and of ``POST /api/v1/campaigns/``: the same
service (:func:`evalhub.campaigns.services.campaign_create`) with the same rules; options left
out take the service's defaults. Runs and annotators are named as elsewhere on the command
line (run names, usernames) within the project.
"""

from __future__ import annotations

from inspect import Signature

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.campaigns.cli import building_reason, describe, progress_lines
from evalhub.campaigns.manage.selectors import live_progress
from evalhub.campaigns.models import (
    MAX_K,
    MAX_LEASE_SECONDS,
    MIN_K,
    MIN_LEASE_SECONDS,
    Campaign,
    CampaignStatus,
    Criterion,
    PairPolicy,
    TaskKind,
)
from evalhub.campaigns.services import campaign_create, members_named
from evalhub.core.cli import (
    get_by_name,
    get_project,
    model_text,
    reports_domain_errors,
    seconds,
    text_argument,
    wait_until,
)
from evalhub.core.limits import MAX_TEXT_CHARS
from evalhub.prompts.models import Prompt
from evalhub.runs.models import GenerationRun

# Service keyword <- option, for the options that are passed only when given.
OPTIONAL = ("criteria", "judgments_per_pair", "gold_rate", "pair_policy", "min_lpips_distance",
            "lease_seconds", "instructions", "prompt_category", "k")


def _default(keyword: str) -> object:
    """The service's default for ``keyword``, for the help texts."""
    return Signature.from_callable(campaign_create).parameters[keyword].default


class Command(BaseCommand):
    help = ("Create a rating campaign over runs of one prompt set: pairs, or best of K. Its "
            "tasks are built by a worker (or here, with --build-here), then it opens for "
            "rating (or stays a draft, with --draft).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--name", required=True, type=model_text(Campaign, "name"),
                            help="campaign name (unique in the project)")
        parser.add_argument("--runs", required=True, nargs="+", metavar="RUN",
                            type=model_text(GenerationRun, "name"),
                            help="names of at least two runs of one prompt set")
        parser.add_argument("--criteria", nargs="+", choices=Criterion.values,
                            help="questions asked (default: overall; overall is always asked)")
        parser.add_argument("--task-kind", default=TaskKind.PAIR, choices=TaskKind.values,
                            help="pair (default) or best_of_k")
        parser.add_argument("--k", type=int,
                            help=f"best of K: images per task, {MIN_K} to {MAX_K}, one per run")
        parser.add_argument("--rank-all", action="store_true",
                            help="best of K: annotators rank all K by successive picks")
        parser.add_argument("--pair-policy", choices=PairPolicy.values,
                            help="which pairs are served first (default "
                                 f"{_default('pair_policy')}; see docs/leaderboards.md)")
        parser.add_argument("--judgments-per-pair", type=int,
                            help=f"votes wanted per task, 1 to 50 (default "
                                 f"{_default('judgments_per_pair')})")
        parser.add_argument("--gold-rate", type=float,
                            help=f"share of served pairs that are gold, 0 to 0.5 (default "
                                 f"{_default('gold_rate')})")
        parser.add_argument("--min-lpips-distance", type=float,
                            help="pairs closer than this LPIPS distance are not asked")
        parser.add_argument("--lease-seconds", type=int,
                            help=f"how long a task is held for its annotator, "
                                 f"{MIN_LEASE_SECONDS} to {MAX_LEASE_SECONDS} (default "
                                 f"{_default('lease_seconds')})")
        parser.add_argument("--instructions", type=text_argument(MAX_TEXT_CHARS),
                            help="shown to annotators above the images")
        parser.add_argument("--prompt-category", type=model_text(Prompt, "category"),
                            help="only prompts of this category")
        parser.add_argument("--annotators", nargs="+", metavar="USERNAME", default=[],
                            type=text_argument(150),
                            help="members who may rate it (default: every member)")
        parser.add_argument("--draft", action="store_true",
                            help="stay a draft once built instead of opening for rating")
        parser.add_argument("--build-here", action="store_true",
                            help="build the tasks in this process instead of on a worker")
        parser.add_argument("--wait", action="store_true",
                            help="wait until a worker has built the tasks")
        parser.add_argument("--timeout", type=seconds, default=3600,
                            help="seconds --wait waits (default 3600)")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        project = get_project(options["project"])
        runs = [get_by_name(GenerationRun, what="run", project=project, name=name)
                for name in options["runs"]]
        given = {key: options[key] for key in OPTIONAL if options[key] is not None}
        # A refusal (InvalidFields) is said once, on one line: reports_domain_errors.
        campaign = campaign_create(
            project=project, name=options["name"], runs=runs,
            task_kind=options["task_kind"], rank_all=options["rank_all"],
            annotators=members_named(project=project, usernames=options["annotators"]),
            open_when_built=not options["draft"], build_now=options["build_here"], **given)
        self.stdout.write(describe(campaign))
        if options["wait"] and not options["build_here"]:
            campaign = self._wait(campaign, options["timeout"])
        self._report(campaign)

    def _wait(self, campaign: Campaign, timeout: float) -> Campaign:
        def built() -> bool:
            campaign.refresh_from_db()
            return campaign.status != CampaignStatus.BUILDING

        if not wait_until(built, timeout=timeout):
            waiting = live_progress(campaign=campaign).waiting_for_runs
            raise CommandError(f"Timed out; campaign {campaign.pk} is still building "
                               f"({building_reason(waiting)}).")
        return campaign

    def _report(self, campaign: Campaign) -> None:
        lines = progress_lines(campaign)
        if campaign.status == CampaignStatus.FAILED:
            raise CommandError(f"Campaign {campaign.pk}: {lines[0]}")
        for line in lines:
            self.stdout.write(line)
