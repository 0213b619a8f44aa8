"""Which votes a leaderboard counts: criterion, judge, prompt category, annotators, time window,
and the other campaigns of the project whose votes it pools."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from evalhub.campaigns.models import Campaign, Criterion
from evalhub.core.converters import object_id
from evalhub.core.errors import EvalHubError
from evalhub.core.limits import MAX_POOLED_CAMPAIGNS
from evalhub.core.when import parse_when
from evalhub.leaderboards.quality import QUALITY_MODES

HUMAN = "human"
_METRIC_JUDGE = re.compile(r"^metric:([a-z0-9_]{1,90})$")


@dataclass(frozen=True)
class LeaderboardFilters:
    """A normalised filter combination.

    ``since`` is inclusive and ``until`` exclusive (a date-only ``until`` means "through the end
    of that day", UTC). The time window and the annotator-quality filter apply to human votes;
    the category filter applies to every judge. Excluded annotators are always left out;
    ``quality`` (``""``, ``exclude`` or ``weight``) also leaves out flagged annotators or
    weights every vote by its annotator's reliability (``leaderboards/quality.py``).

    ``pool`` (sorted campaign ids of the same project) adds the votes of those campaigns on
    this campaign's runs: a pair campaign and a best-of-K campaign over the same runs make one
    Plackett-Luce leaderboard (docs/leaderboards.md, "Pooling campaigns"). Every other filter
    applies to each pooled campaign's votes as to this one's, with that campaign's own
    annotator exclusions and reliability.
    """

    criterion: str = Criterion.OVERALL.value
    judge: str = HUMAN
    category: str = ""
    min_gold_accuracy: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    quality: str = ""
    pool: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # The plain string, whatever was passed (a campaign's criteria read before a reload
        # are ``Criterion`` members): ``f"{c!r}"`` of a member is "Criterion.OVERALL".
        object.__setattr__(self, "criterion", str(self.criterion))

    @property
    def metric_name(self) -> str | None:
        """The metric judge's name for ``judge="metric:<name>"``, else None."""
        match = _METRIC_JUDGE.match(self.judge)
        return match.group(1) if match else None

    @property
    def is_default(self) -> bool:
        """Human votes without filters: the combination the background task keeps fresh."""
        return (self.judge == HUMAN and not self.category and self.min_gold_accuracy is None
                and self.since is None and self.until is None and not self.quality
                and not self.pool)

    def as_dict(self) -> dict:
        """JSON-ready, without the criterion (stored next to it); ``quality`` and ``pool`` only
        when set, so the hashes of snapshots stored before they existed still match."""
        return {
            "judge": self.judge,
            "category": self.category,
            "min_gold_accuracy": self.min_gold_accuracy,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        } | ({"quality": self.quality} if self.quality else {}) | (
            {"pool": list(self.pool)} if self.pool else {})

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def with_judge(self, judge: str) -> LeaderboardFilters:
        return LeaderboardFilters(self.criterion, judge, self.category, self.min_gold_accuracy,
                                  self.since, self.until, self.quality, self.pool)


def parse_filters(*, campaign: Campaign, params: Mapping[str, str],
                  unpooled: list[str] | None = None) -> LeaderboardFilters:
    """Validate query parameters (or command options) into :class:`LeaderboardFilters`.

    ``unpooled``: when given, a pooled campaign that does not rate the criterion is left out
    of the pool and its name appended to the list (the dashboard, whose form can change the
    criterion with the pool ticked, says so) instead of refusing the filters.
    """

    def get(name: str) -> str:
        return (params.get(name) or "").strip()

    criterion = get("criterion") or Criterion.OVERALL.value
    if criterion not in Criterion.values:
        raise EvalHubError(f"Unknown criterion {criterion!r}; expected one of {Criterion.values}.")
    judge = get("judge") or HUMAN
    if judge != HUMAN and not _METRIC_JUDGE.match(judge):
        raise EvalHubError(f"judge must be 'human' or 'metric:<name>', got {judge!r}.")
    if judge == HUMAN and criterion not in campaign.criteria:
        raise EvalHubError(f"This campaign does not rate {criterion!r}; "
                           f"its criteria are {[str(c) for c in campaign.criteria]}.")
    min_gold = None
    if get("min_gold_accuracy"):
        try:
            min_gold = float(get("min_gold_accuracy"))
        except ValueError as exc:
            raise EvalHubError("min_gold_accuracy must be a number between 0 and 1.") from exc
        if not 0.0 <= min_gold <= 1.0:
            raise EvalHubError("min_gold_accuracy must be a number between 0 and 1.")
    since = parse_when(get("since"), name="since", end_of_day=False) if get("since") else None
    until = parse_when(get("until"), name="until", end_of_day=True) if get("until") else None
    if since and until and since >= until:
        raise EvalHubError("since must be before until.")
    quality = get("quality")
    if quality not in QUALITY_MODES:
        raise EvalHubError(f"quality must be 'exclude' or 'weight' (or empty), got {quality!r}.")
    return LeaderboardFilters(criterion=criterion, judge=judge, category=get("category"),
                              min_gold_accuracy=min_gold, since=since, until=until,
                              quality=quality,
                              pool=_parse_pool(campaign=campaign, params=params,
                                               criterion=criterion, judge=judge,
                                               unpooled=unpooled))


def _parse_pool(*, campaign: Campaign, params: Mapping[str, str], criterion: str,
                judge: str, unpooled: list[str] | None) -> tuple[int, ...]:
    """The ``pool`` parameter: campaign ids separated by commas, or repeated (the dashboard's
    checkboxes), each another campaign of ``campaign``'s project that rates ``criterion``
    (human votes; ``unpooled``: see ``parse_filters``). One query, whatever the number of
    ids."""
    getlist = getattr(params, "getlist", None)
    values = getlist("pool") if getlist else [params.get("pool") or ""]
    parts = [part.strip() for value in values for part in str(value).split(",") if part.strip()]
    if not parts:
        return ()
    found_ids = [object_id(part) for part in parts]
    if None in found_ids:
        raise EvalHubError("pool must be campaign ids separated by commas, e.g. pool=4,9.")
    ids = sorted(set(found_ids))
    if len(ids) > MAX_POOLED_CAMPAIGNS:
        raise EvalHubError(f"A leaderboard pools the votes of at most {MAX_POOLED_CAMPAIGNS} "
                           f"other campaigns; pool names {len(ids)}.")
    if campaign.pk in ids:
        raise EvalHubError("A leaderboard always counts its own campaign's votes: pool names "
                           "the other campaigns whose votes it adds.")
    found = {c.pk: c for c in Campaign.objects.filter(project_id=campaign.project_id,
                                                      pk__in=ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        # The same words for a campaign of another project as for none: nothing is revealed.
        raise EvalHubError(f"No campaign {', '.join(map(str, missing))} in this project to "
                           "pool votes from.")
    silent = [i for i in ids if judge == HUMAN and criterion not in found[i].criteria]
    if silent and unpooled is None:
        raise EvalHubError(f"Campaign {found[silent[0]].name!r} does not rate {criterion!r}: "
                           "it has no votes to pool for it.")
    if unpooled is not None:
        unpooled += [found[i].name for i in silent]
    return tuple(i for i in ids if i not in silent)


#: Why ``parse_ab`` refused (``EvalHubError.code``): the API sends it, the dashboard's A/B form
#: words its refusal by it.
AB_SAME_RUN_CODE, AB_NOT_RUN_IDS_CODE = "ab_same_run", "ab_not_run_ids"


def parse_ab(raw: str | None) -> tuple[int, int] | None:
    """``"12,15"`` -> (12, 15); None when absent. Refused (``code`` says why): anything but
    two ids (``core.converters.object_id``), or the same run twice. An id need not be a run of
    the board: ``ab_test`` says which are not."""
    if not raw:
        return None
    parts = [p.strip() for p in raw.split(",")]
    ids = [i for i in map(object_id, parts) if i is not None]
    if len(parts) != 2 or len(ids) != 2 or ids[0] == ids[1]:
        error = EvalHubError(
            "ab must be two different run ids separated by a comma, e.g. ab=3,7.")
        error.code = AB_SAME_RUN_CODE if len(ids) == 2 == len(parts) else AB_NOT_RUN_IDS_CODE
        raise error
    return ids[0], ids[1]
