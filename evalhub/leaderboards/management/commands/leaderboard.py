"""manage.py leaderboard <campaign_id> [--criterion C] [--json] [filters] [--pool C,D]"""

from __future__ import annotations

import json
import re

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.campaigns.cli import get_campaign
from evalhub.campaigns.models import Criterion
from evalhub.core.cli import model_text, reports_domain_errors
from evalhub.core.errors import EvalHubError
from evalhub.leaderboards.filters import parse_ab, parse_filters
from evalhub.leaderboards.fingerprint import leaderboard_changes_since
from evalhub.leaderboards.results import ABTestError
from evalhub.leaderboards.selectors import ab_test
from evalhub.leaderboards.services import leaderboard_get
from evalhub.leaderboards.text import fit_method, leaderboard_table, run_count_column
from evalhub.prompts.models import Prompt

#: The filters' parameter names (the API's query parameters, which their refusals name) ->
#: this command's options.
OPTION_OF_PARAMETER = {
    "ab": "--ab", "pool": "--pool", "judge": "--judge", "since": "--since", "until": "--until",
    "quality": "--quality", "min_gold_accuracy": "--min-gold-accuracy",
}
_NAMES = "|".join(OPTION_OF_PARAMETER)
# A parameter as the refusals name it: the message's subject ("ab must be ..."), an example
# ("e.g. ab=3,7") or the other end of a range ("since must be before until").
_PARAMETER = re.compile(rf"(?:^|(?<=before ))(?P<subject>{_NAMES})\b|\b(?P<example>{_NAMES})=")


def in_option_words(message: str) -> str:
    """``"ab must be ..., e.g. ab=3,7."`` -> ``"--ab must be ..., e.g. --ab 3,7."``: a refusal
    of the leaderboard's filters (``parse_filters``, ``parse_ab``, shared with the API and the
    dashboard, whose words are the query parameters') in the words a terminal typed."""
    def option(match: re.Match[str]) -> str:
        if match["subject"]:
            return OPTION_OF_PARAMETER[match["subject"]]
        return f"{OPTION_OF_PARAMETER[match['example']]} "

    return _PARAMETER.sub(option, message)


class Command(BaseCommand):
    help = "Print a campaign's leaderboard (Bradley-Terry Elo with bootstrap CIs) or its JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign_id", type=int, help="campaign id")
        parser.add_argument("--criterion", default=Criterion.OVERALL, choices=Criterion.values,
                            help="the question whose votes are ranked (default overall)")
        parser.add_argument("--json", action="store_true", help="print the full JSON payload")
        parser.add_argument("--category", default="", type=model_text(Prompt, "category"),
                            help="only votes on prompts of this category")
        parser.add_argument("--judge", default="human", help="human or metric:<name>")
        parser.add_argument("--min-gold-accuracy", default="",
                            help="only annotators with at least this gold accuracy (0..1)")
        parser.add_argument("--since", default="", help="votes at or after (ISO, UTC if naive)")
        parser.add_argument("--until", default="", help="votes before (ISO, UTC if naive)")
        parser.add_argument("--quality", default="", choices=["", "exclude", "weight"],
                            help="annotator quality control: leave flagged annotators out, or "
                                 "weight votes by reliability")
        parser.add_argument("--pool", default="",
                            help="ids of other campaigns of the project 'C,D': count their "
                                 "votes on this campaign's runs too (pairs and best-of-K "
                                 "rankings in one fit)")
        parser.add_argument("--ab", default="",
                            help="two run ids 'A,B': the sequential A/B test of A against B")
        parser.add_argument("--refresh", action="store_true",
                            help="recompute now instead of reading the stored snapshot")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        campaign = get_campaign(options["campaign_id"])
        params = {key: str(options[key] or "") for key in
                  ("criterion", "category", "judge", "min_gold_accuracy", "since", "until",
                   "quality", "pool")}
        try:
            filters = parse_filters(campaign=campaign, params=params)
            ab = parse_ab(options["ab"])
        except EvalHubError as exc:
            raise CommandError(in_option_words(str(exc))) from exc
        snapshot, stale = leaderboard_get(campaign=campaign, filters=filters,
                                          refresh=options["refresh"])
        board = snapshot.result
        last_updated = snapshot.computed_at.isoformat()
        test = ab_test(board=board, run_a=ab[0], run_b=ab[1]) if ab is not None else None
        if isinstance(test, ABTestError):  # asked for and impossible: an error, not a footnote
            raise CommandError(f"--ab: {test.error}.")
        if options["json"]:
            # The same document as GET /api/v1/campaigns/<id>/leaderboard/.
            payload = {**board.to_json(), "last_updated": last_updated, "stale": stale}
            if test is not None:
                payload["ab_test"] = test.to_json()
            self.stdout.write(json.dumps(payload, indent=2, allow_nan=False))
        else:
            self.stdout.write(leaderboard_table(
                board, last_updated=last_updated, stale=stale, ab=test,
                count_column=run_count_column(task_kind=campaign.task_kind, pooled=board.pooled),
                fit=fit_method(task_kind=campaign.task_kind, k=campaign.k, pooled=board.pooled)))
            if stale:
                changes = leaderboard_changes_since(campaign=campaign, pool=filters.pool,
                                                    since=snapshot.computed_at)
                self.stdout.write(f"Changed since: {changes.describe()}.")
