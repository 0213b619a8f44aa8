"""Writing: metric judges' judgments, leaderboard snapshots and their debounced refresh."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from evalhub.campaigns.models import (
    Campaign,
    CampaignStatus,
    ComparisonTask,
    Criterion,
    JudgeKind,
    Judgment,
    Outcome,
    TaskKind,
)
from evalhub.core.errors import EvalHubError
from evalhub.core.queueing import enqueue_on_commit
from evalhub.evaluation.selectors import image_metric_values
from evalhub.leaderboards import charts
from evalhub.leaderboards.filters import LeaderboardFilters
from evalhub.leaderboards.fingerprint import (
    data_fingerprint,
    data_fingerprints,
    leaderboard_fingerprint,
)
from evalhub.leaderboards.models import LeaderboardRefresh, LeaderboardSnapshot
from evalhub.leaderboards.quality_snapshot import quality_snapshot_refresh
from evalhub.leaderboards.results import Leaderboard, is_current
from evalhub.leaderboards.selectors import leaderboard_compute, snapshot_for, snapshots_for
from evalhub.leaderboards.text import fit_method

# --- metric judges ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricJudgeSpec:
    higher_is_better: bool
    criteria: tuple[str, ...]
    epsilon: float  # |score difference| below this is a tie, in the metric's units
    # The largest epsilon: the width of the metric's range, past which every pair is a tie.
    max_epsilon: float


#: Per-image metrics that can judge a pair. CLIP-score is 100 * max(cosine, 0), from 0 to 100,
#: so 0.25 points ~ noise.
JUDGE_METRICS: dict[str, MetricJudgeSpec] = {
    "clip_score": MetricJudgeSpec(higher_is_better=True,
                                  criteria=(Criterion.OVERALL, Criterion.ALIGNMENT),
                                  epsilon=0.25, max_epsilon=100.0),
}


def metric_judge_spec(metric: str) -> MetricJudgeSpec:
    spec = JUDGE_METRICS.get(metric)
    if spec is None:
        raise EvalHubError(f"{metric!r} cannot judge pairs; choose one of {sorted(JUDGE_METRICS)}.")
    return spec


def metric_judge_epsilon(*, metric: str, epsilon: float | None) -> float:
    """The tie threshold ``metric``'s judge uses: its default, or ``epsilon``, a number from 0
    to the width of the metric's range (NaN, infinity and anything larger are refused: every
    pair would be a tie, or none could be told). Checked by the API before it queues the
    judges, and by the judges themselves (the CLI)."""
    spec = metric_judge_spec(metric)
    if epsilon is None:
        return spec.epsilon
    eps = float(epsilon)
    if not 0 <= eps <= spec.max_epsilon:  # written so that NaN fails too
        raise EvalHubError(f"epsilon must be a number from 0 to {spec.max_epsilon:g} (the "
                           f"range of {metric}); {epsilon} given.")
    return eps


@dataclass
class MetricJudgeReport:
    metric: str
    criteria: list[str]
    tasks: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # tasks where an image has no value for the metric
    calibrated: bool = True
    epsilon: float = 0.0
    missing_images: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "missing_images"}


def metric_outcome(*, value_a: float, value_b: float, higher_is_better: bool,
                   epsilon: float) -> str:
    """Higher (or lower) score wins; a difference below ``epsilon`` is a tie."""
    delta = value_a - value_b if higher_is_better else value_b - value_a
    if abs(delta) < epsilon:
        return Outcome.TIE
    return Outcome.A if delta > 0 else Outcome.B


def check_metric_judges_apply(campaign: Campaign) -> None:
    """Metric judges compare the two images of a pair task. A best-of-K task's
    ``image_a``/``image_b`` are only its first two positions: judging them would rank runs on an
    arbitrary subset of each task's images, so best-of-K campaigns are refused (400). A failed
    campaign has no tasks to judge; a closed one is judged still (it keeps its votes)."""
    if campaign.task_kind == TaskKind.BEST_OF_K:
        raise EvalHubError("Metric judges compare pairs; this campaign shows best-of-K tasks.")
    if campaign.status == CampaignStatus.FAILED:
        raise EvalHubError(f"Campaign {campaign.name!r} failed: it has no tasks for a metric "
                           "judge.")


METRIC_JUDGES_TASK = "evalhub.leaderboards.metric_judges"


def metric_judges_queue(*, campaign: Campaign, metric: str, epsilon: float | None) -> None:
    """Check that ``metric``'s judge can judge ``campaign`` with ``epsilon`` (400 otherwise)
    and queue :func:`metric_judges_run` on a worker once the caller's transaction commits.
    What the API and the campaign page both call."""
    metric_judge_epsilon(metric=metric, epsilon=epsilon)
    check_metric_judges_apply(campaign)
    enqueue_on_commit(METRIC_JUDGES_TASK, campaign.pk, metric, epsilon)


def metric_judges_run(*, campaign: Campaign, metric: str = "clip_score",
                      epsilon: float | None = None) -> MetricJudgeReport:
    """Cast (or update) one metric judgment per non-gold task and criterion; idempotent.

    Judgments have ``judge_kind="metric"`` and ``metric_name=metric``; whether the scores were
    calibrated is derived from the per-image values (see
    :func:`evalhub.leaderboards.selectors.metric_judge_calibrated`).
    """
    spec = metric_judge_spec(metric)
    check_metric_judges_apply(campaign)
    eps = metric_judge_epsilon(metric=metric, epsilon=epsilon)
    # Only the questions the campaign asks (every campaign asks "overall"): a judgment on
    # another would add a criterion its leaderboard and exports never asked annotators.
    criteria = [c for c in spec.criteria if c in campaign.criteria]
    report = MetricJudgeReport(metric=metric, criteria=criteria, epsilon=eps)
    judged = ComparisonTask.objects.filter(campaign=campaign, is_gold=False)
    tasks = list(judged.values_list("id", "image_a_id", "image_b_id"))
    report.tasks = len(tasks)
    # The tasks' images as a subquery: a campaign of 100,000 tasks has up to twice as many
    # images, more ids than one statement can bind.
    values = image_metric_values(
        image_ids=judged.values("image_a_id").union(judged.values("image_b_id")),
        metric=metric)
    existing = {(task_id, criterion): (pk, outcome, calibrated)
                for pk, task_id, criterion, outcome, calibrated in
                Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.METRIC,
                                        metric_name=metric)
                .values_list("id", "task_id", "criterion", "outcome", "metric_calibrated")}
    to_create: list[Judgment] = []
    to_update: list[Judgment] = []
    missing: set[int] = set()
    for task_id, image_a, image_b in tasks:
        value_a, value_b = values.get(image_a), values.get(image_b)
        if value_a is None or value_b is None:
            report.skipped += 1
            missing.update(i for i, v in ((image_a, value_a), (image_b, value_b)) if v is None)
            continue
        calibrated = value_a.calibrated and value_b.calibrated
        report.calibrated = report.calibrated and calibrated
        outcome = metric_outcome(value_a=value_a.value, value_b=value_b.value,
                                 higher_is_better=spec.higher_is_better, epsilon=eps)
        for criterion in criteria:
            found = existing.get((task_id, criterion))
            if found is None:
                to_create.append(Judgment(
                    task_id=task_id, campaign=campaign, criterion=criterion, outcome=outcome,
                    judge_kind=JudgeKind.METRIC, metric_name=metric,
                    metric_calibrated=calibrated))
            elif found[1] != outcome or found[2] != calibrated:
                to_update.append(Judgment(pk=found[0], outcome=outcome,
                                          metric_calibrated=calibrated))
            else:
                report.unchanged += 1
    with transaction.atomic():
        # ignore_conflicts: a concurrent run may have cast the same judgments meanwhile
        # (unique constraint one_judgment_per_metric).
        Judgment.objects.bulk_create(to_create, batch_size=1000, ignore_conflicts=True)
        Judgment.objects.bulk_update(to_update, ["outcome", "metric_calibrated"],
                                     batch_size=1000)
        if to_create or to_update:
            # Updated outcomes do not change the vote counts the fingerprint sees; a pooled
            # leaderboard of the project may count these judgments too.
            LeaderboardSnapshot.objects.filter(
                Q(campaign=campaign) | Q(campaign__project_id=campaign.project_id,
                                         filters__has_key="pool")).update(fingerprint="")
    report.created, report.updated = len(to_create), len(to_update)
    report.missing_images = sorted(missing)
    return report


# --- snapshots --------------------------------------------------------------------------------


def refresh_delay_seconds() -> int:
    return int(getattr(settings, "EVALHUB_LEADERBOARD_REFRESH_SECONDS", 30))


def leaderboard_snapshot_refresh(*, campaign: Campaign, filters: LeaderboardFilters,
                                 rounds: int | None = None) -> LeaderboardSnapshot:
    """Compute and store the leaderboard for ``filters`` (replacing an older snapshot)."""
    # Fingerprint first: a vote arriving during the computation leaves the snapshot stale.
    fingerprint = leaderboard_fingerprint(campaign=campaign, pool=filters.pool)
    board = leaderboard_compute(campaign=campaign, filters=filters, rounds=rounds)
    defaults = {"payload": board.to_json(), "fingerprint": fingerprint, "votes_count": board.votes,
                "filters": filters.as_dict(), "is_default": filters.is_default,
                "computed_at": timezone.now(), "charts": _charts(board, campaign)}
    lookup = {"campaign": campaign, "criterion": filters.criterion,
              "filters_hash": filters.hash}
    try:
        with transaction.atomic():
            snapshot, _ = LeaderboardSnapshot.objects.update_or_create(**lookup,
                                                                       defaults=defaults)
    except IntegrityError:  # a concurrent refresh created it first
        snapshot, _ = LeaderboardSnapshot.objects.update_or_create(**lookup, defaults=defaults)
    return snapshot


def _charts(board: Leaderboard, campaign: Campaign) -> dict:
    fit = fit_method(task_kind=campaign.task_kind, k=campaign.k, pooled=board.pooled)
    return {"version": charts.CHARTS_VERSION, "figures": charts.campaign_figures(board, fit=fit)}


def snapshot_figures(snapshot: LeaderboardSnapshot) -> list[dict]:
    """The campaign page's charts of ``snapshot`` (``[{"id", "figure"}]``): as stored with it,
    or drawn now and stored when they were drawn by another version of ``charts.py``."""
    stored = snapshot.charts or {}
    if stored.get("version") == charts.CHARTS_VERSION:
        return stored["figures"]
    snapshot.charts = _charts(snapshot.result, snapshot.campaign)
    LeaderboardSnapshot.objects.filter(pk=snapshot.pk).update(charts=snapshot.charts)
    return snapshot.charts["figures"]


def campaign_leaderboards_refresh(*, campaign: Campaign) -> list[LeaderboardSnapshot]:
    """Recompute the default (human, unfiltered) leaderboard of every criterion, and the
    annotator quality the pages show beside them (``quality_snapshot``), so that no page
    estimates either per request."""
    quality_snapshot_refresh(campaign=campaign, fingerprint=data_fingerprint(campaign=campaign))
    return [leaderboard_snapshot_refresh(campaign=campaign,
                                         filters=LeaderboardFilters(criterion=criterion))
            for criterion in campaign.criteria]


def leaderboard_get(*, campaign: Campaign, filters: LeaderboardFilters, refresh: bool = False,
                    fingerprint: str | None = None) -> tuple[LeaderboardSnapshot, bool]:
    """The snapshot for ``filters`` and whether it is stale.

    A missing snapshot, one stored by an older version of the result (another ``schema``: it
    cannot be read back), or a stale one for non-default filters is recomputed now; a stale
    default snapshot is returned as is (the background refresh is already queued; this queues
    one more in case it was lost) so that the page stays fast while votes pour in. Read the
    leaderboard with ``snapshot.result``. ``fingerprint``: the campaign's current data
    fingerprint (``data_fingerprint``) when the caller has it already; a pooled leaderboard
    combines it with the pooled campaigns' (``leaderboard_fingerprint``).
    """
    snapshot = snapshot_for(campaign=campaign, filters=filters)
    fingerprint = leaderboard_fingerprint(campaign=campaign, pool=filters.pool, own=fingerprint)
    return _settled(campaign=campaign, filters=filters, snapshot=snapshot,
                    fingerprint=fingerprint, refresh=refresh)


def leaderboards_get(*, campaigns: Sequence[Campaign], filters: LeaderboardFilters
                     ) -> list[tuple[LeaderboardSnapshot, bool]]:
    """:func:`leaderboard_get` of each of ``campaigns`` (in their order), with the same rules,
    their snapshots and data fingerprints read for all of them at once: fresh snapshots cost
    the same queries however many campaigns are read (the model dashboard reads every
    campaign rating the model). Only a missing, unreadable or stale one costs its own
    queries, as it would alone. A pool (``filters.pool``) is looked up campaign by campaign."""
    snapshots = snapshots_for(campaigns=campaigns, filters=filters)
    own = data_fingerprints(campaigns)
    return [_settled(campaign=campaign, filters=filters, snapshot=snapshots.get(campaign.pk),
                     fingerprint=leaderboard_fingerprint(campaign=campaign, pool=filters.pool,
                                                         own=own[campaign.pk]))
            for campaign in campaigns]


def _settled(*, campaign: Campaign, filters: LeaderboardFilters,
             snapshot: LeaderboardSnapshot | None, fingerprint: str,
             refresh: bool = False) -> tuple[LeaderboardSnapshot, bool]:
    """What :func:`leaderboard_get` answers given the stored ``snapshot`` (or None) and the
    leaderboard's current ``fingerprint``: the one place its rules are written."""
    readable = snapshot is not None and is_current(snapshot.payload)
    fresh = readable and snapshot.fingerprint == fingerprint
    if not readable or refresh or (not fresh and not filters.is_default):
        return leaderboard_snapshot_refresh(campaign=campaign, filters=filters), False
    if not fresh:
        leaderboard_refresh_schedule(campaign=campaign)
    return snapshot, not fresh


def leaderboard_refresh_schedule(*, campaign: Campaign, delay_s: int | None = None) -> bool:
    """Queue one background refresh per campaign per ``delay_s`` seconds (debounce).

    The refresh runs ``delay_s`` seconds after it is queued, so it also covers every vote that
    arrives while it waits; a vote after it was queued+run window queues the next one. The
    claim is an atomic conditional UPDATE on a per-campaign row, so concurrent web processes
    queue at most one. Returns whether this call queued a refresh.
    """
    delay = refresh_delay_seconds() if delay_s is None else delay_s
    now = timezone.now()
    claimed = LeaderboardRefresh.objects.filter(
        campaign=campaign, enqueued_at__lte=now - timedelta(seconds=delay)
    ).update(enqueued_at=now)
    if not claimed:
        if LeaderboardRefresh.objects.filter(campaign=campaign).exists():
            return False
        try:
            with transaction.atomic():
                LeaderboardRefresh.objects.create(campaign=campaign, enqueued_at=now)
        except IntegrityError:
            return False
    enqueue_on_commit("evalhub.leaderboards.refresh", campaign.pk, countdown=delay)
    return True
