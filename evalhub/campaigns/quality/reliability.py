"""Annotator reliability of one campaign: the votes read here, the estimate in ``ratings``.

:func:`campaign_reliability` gathers, per annotator, the evidence of
:class:`ratings.reliability.AnnotatorEvidence` from the live human votes on the overall
criterion (pair votes, and best-of-K rankings as the decisive pairs they imply, the earlier
slot standing for the left side: :func:`_ranked_pairs`) and calls
:func:`ratings.reliability.annotator_reliability`
with the campaign's gold thresholds and the fast-vote settings. Formulas (crowd-BT accuracy,
the weight, the flags) are in that module's docstring.

The fast-vote floor: a vote whose server-measured response time (from when its pair could
first be on screen, the later of its lease's ``leased_at`` and the annotator's previous vote:
:mod:`evalhub.campaigns.quality.timing`, the one rule) is below ``EVALHUB_FAST_VOTE_FLOOR_MS``
(700 ms by default) is implausibly fast: too short to look at two images. Such votes lower the
annotator's weight by their share, and an annotator with at least
``EVALHUB_FAST_VOTE_MIN_VOTES`` timed votes of which a share of at least
``EVALHUB_FAST_VOTE_SHARE`` are below the floor is flagged ``fast``.

These flags, reasons and weights are what every page shows (the campaign page and the quality
API through ``annotators.with_reliability``, the dashboard), from the estimate the background
refresh stores (``evalhub/leaderboards/quality_snapshot.py``).

How leaderboards use it (``quality`` filter, ``evalhub/leaderboards/quality.py``): ``exclude``
leaves out every flagged annotator, ``weight`` counts each vote with its annotator's weight.
Annotators the scientists excluded are always left out, whatever the estimate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count

from evalhub.campaigns.models import Campaign, Criterion, Outcome, TaskImage
from evalhub.campaigns.quality.annotators import excluded_annotator_ids, human_judgments
from evalhub.campaigns.quality.timing import timed_counts
from evalhub.exports.implied import implied_pairs
from ratings.reliability import FLAG_REASONS, AnnotatorEvidence, annotator_reliability

__all__ = ["AnnotatorReliability", "CampaignReliability", "campaign_reliability"]

#: Below this weight an annotator counts as down-weighted on the dashboards.
DOWN_WEIGHTED_BELOW = 0.5
_PAIR_OUTCOMES = (Outcome.A, Outcome.B, Outcome.TIE, Outcome.BOTH_BAD)


@dataclass(frozen=True)
class AnnotatorReliability:
    """One annotator's reliability in one campaign.

    ``accuracy``: crowd-BT probability of reporting the true preference; ``weight``: what one of
    their votes counts in a weighted leaderboard, 0-1 (0 when the scientists excluded them;
    ``estimated_weight`` is the estimate's, whatever the exclusion);
    ``left_share``: shrunk share of decisive votes for the left image; ``fast_share``: share of
    their votes below the fast-vote floor; ``flags``: raised flags (keys of
    ``ratings.reliability.FLAG_REASONS``), ``reasons`` the same in words.
    """

    annotator_id: int
    username: str
    votes: int
    gold_votes: int
    accuracy: float
    weight: float
    estimated_weight: float
    left_share: float
    fast_share: float
    flags: tuple[str, ...]
    reasons: tuple[str, ...]
    excluded: bool

    @property
    def down_weighted(self) -> bool:
        return self.weight < DOWN_WEIGHTED_BELOW

    @property
    def weight_percent(self) -> int:
        return round(100 * self.weight)


@dataclass(frozen=True)
class CampaignReliability:
    """Every annotator of a campaign with human votes, by annotator id."""

    annotators: tuple[AnnotatorReliability, ...]

    def weights(self) -> dict[int, float]:
        """Annotator id -> vote weight (0 for annotators the scientists excluded)."""
        return {a.annotator_id: a.weight for a in self.annotators}

    def flagged_ids(self) -> set[int]:
        return {a.annotator_id for a in self.annotators if a.flags}

    def affected(self) -> list[AnnotatorReliability]:
        """Annotators excluded, flagged or down-weighted: what the dashboards list."""
        return [a for a in self.annotators if a.excluded or a.flags or a.down_weighted]

    def with_exclusions(self, excluded: set[int]) -> CampaignReliability:
        """The same estimate with ``excluded`` (annotator ids) as the scientists' exclusions:
        what a stored estimate becomes when annotators were excluded or readmitted since."""
        return CampaignReliability(tuple(
            replace(a, excluded=a.annotator_id in excluded,
                    weight=0.0 if a.annotator_id in excluded else a.estimated_weight)
            for a in self.annotators))

    def to_json(self) -> list[dict]:
        return [asdict(a) for a in self.annotators]

    @classmethod
    def from_json(cls, rows: list[dict]) -> CampaignReliability:
        return cls(tuple(AnnotatorReliability(**{
            **row, "flags": tuple(row["flags"]), "reasons": tuple(row["reasons"])})
            for row in rows))


@dataclass(frozen=True)
class _RankedPairs:
    """Best-of-K votes as arrays: one entry per implied pair (``annotator``, ``winner`` and
    ``loser`` run ids, ``first``: 1 when the winner was shown in the earlier slot, 0 when
    later, 0.5 when the display order is unknown, ``count``: the vote's count times the pair's
    weight) and one per vote (``vote_annotator``, ``votes``, ``timed``, ``fast``)."""

    annotator: np.ndarray
    winner: np.ndarray
    loser: np.ndarray
    first: np.ndarray
    count: np.ndarray
    vote_annotator: np.ndarray
    votes: np.ndarray
    timed: np.ndarray
    fast: np.ndarray

    def run_ids(self) -> set[int]:
        return set(np.unique(self.winner).tolist()) | set(np.unique(self.loser).tolist())


@lru_cache(maxsize=4096)
def _pairs_of(ranking: tuple[int, ...], k: int) -> tuple[tuple[int, int, float], ...]:
    """(chosen, rejected, weight) of :func:`implied_pairs`, computed once per distinct
    ranking and K (a campaign has few: K! orders at most)."""
    return tuple((p.chosen, p.rejected, p.weight) for p in implied_pairs(list(ranking), k))


def _ranked_pairs(campaign: Campaign) -> _RankedPairs:
    """Each live best-of-K vote on the overall criterion as the decisive pairs it implies.

    A ranking is expanded by the rankings exports' rule (``exports.implied.implied_pairs``:
    each pick beat every run still on offer), with its weights: the pairs of one vote weigh 1
    together, so a best-of-K vote is one vote of evidence, as a pair vote is (its K - 1 pairs
    share one decision; counted one each, they would make an annotator's every habit look
    K - 1 times as significant). A pair's "left" image is the one shown in the earlier slot
    (``Judgment.shown_order``: the canonical position in each displayed slot): with the slots
    in random order, an annotator without a position habit wins from the earlier slot half of
    the time, and one who always picks the first slot always does. The vote, timed and fast
    counts are kept once per vote. Plain lists then numpy: a dict per implied pair cost most
    of a 200,000-vote campaign's estimate.
    """
    rows = (human_judgments(campaign).filter(criterion=Criterion.OVERALL, ranking__isnull=False)
            .values_list("annotator_id", "task_id", "ranking", "shown_order")
            .annotate(n=Count("id"), **timed_counts(campaign=campaign)).order_by())
    members: dict[int, dict[int, int]] = {}
    for task_id, position, run_id in TaskImage.objects.filter(
            task__campaign=campaign).values_list("task_id", "position", "run_id"):
        members.setdefault(task_id, {})[position] = run_id
    pair_rows: list[tuple[int, int, int, float, float]] = []
    vote_rows: list[tuple[int, int, int, int]] = []
    for annotator_id, task_id, ranking, shown_order, n, n_timed, n_fast in (
            rows if members else ()):
        runs = members.get(task_id, {})
        slot = {position: k for k, position in enumerate(shown_order or [])}
        vote_rows.append((annotator_id, n, n_timed, n_fast))
        for chosen, rejected, weight in _pairs_of(tuple(ranking), len(runs)):
            first = (0.5 if chosen not in slot or rejected not in slot
                     else float(slot[chosen] < slot[rejected]))
            pair_rows.append((annotator_id, runs[chosen], runs[rejected], first, n * weight))
    pairs = np.array(pair_rows, dtype=float).reshape(-1, 5)
    votes = np.array(vote_rows, dtype=np.int64).reshape(-1, 4)
    return _RankedPairs(
        annotator=pairs[:, 0].astype(np.int64), winner=pairs[:, 1].astype(np.int64),
        loser=pairs[:, 2].astype(np.int64), first=pairs[:, 3], count=pairs[:, 4],
        vote_annotator=votes[:, 0], votes=votes[:, 1], timed=votes[:, 2], fast=votes[:, 3])


def campaign_reliability(*, campaign: Campaign) -> CampaignReliability:
    """Reliability of every annotator with live human votes in ``campaign`` (overall criterion).

    One aggregate query (grouped by annotator, pair, outcome, side and gold answer) for pair
    votes, one for best-of-K rankings (read as the decisive pairs they imply:
    :func:`_ranked_pairs`) and their tasks' runs, then pure numpy.
    """
    rows = list(
        human_judgments(campaign).filter(criterion=Criterion.OVERALL, outcome__in=_PAIR_OUTCOMES)
        .values("annotator_id", "task__run_a_id", "task__run_b_id", "outcome", "a_side",
                "task__is_gold", "task__gold_answer")
        .annotate(n=Count("id"), **timed_counts(campaign=campaign))
        .order_by())
    ranked = _ranked_pairs(campaign)
    if not rows and not len(ranked.vote_annotator):
        return CampaignReliability(())
    annotator_ids = sorted({r["annotator_id"] for r in rows}
                           | set(np.unique(ranked.vote_annotator).tolist()))
    run_ids = sorted({r["task__run_a_id"] for r in rows} | {r["task__run_b_id"] for r in rows}
                     | ranked.run_ids())
    who = {aid: k for k, aid in enumerate(annotator_ids)}
    run = {rid: k for k, rid in enumerate(run_ids)}
    a_count, n = len(annotator_ids), len(run_ids)
    decisive, ties = np.zeros((a_count, n, n)), np.zeros((a_count, n, n))
    counts = {name: np.zeros(a_count) for name in
              ("votes", "left", "gold", "gold_ok", "timed", "fast")}
    for r in rows:
        k, c = who[r["annotator_id"]], r["n"]
        i, j = run[r["task__run_a_id"]], run[r["task__run_b_id"]]
        counts["timed"][k] += r["n_timed"]
        counts["fast"][k] += r["n_fast"]
        outcome = r["outcome"]
        if r["task__is_gold"]:
            counts["gold"][k] += c
            counts["gold_ok"][k] += c if outcome == r["task__gold_answer"] else 0
            continue
        counts["votes"][k] += c
        if outcome in (Outcome.A, Outcome.B):
            winner, loser = (i, j) if outcome == Outcome.A else (j, i)
            decisive[k, winner, loser] += c
            if r["a_side"] in ("left", "right") and (outcome == Outcome.A) == (
                    r["a_side"] == "left"):
                counts["left"][k] += c
        elif i != j:
            ties[k, i, j] += c
            ties[k, j, i] += c
    if len(ranked.vote_annotator):
        index = np.vectorize(who.__getitem__, otypes=[np.int64])
        runs = np.vectorize(run.__getitem__, otypes=[np.int64])
        k = index(ranked.annotator)
        np.add.at(decisive, (k, runs(ranked.winner), runs(ranked.loser)), ranked.count)
        # Unknown display order (first = 0.5): half a win for each side.
        np.add.at(counts["left"], k, ranked.count * ranked.first)
        voter = index(ranked.vote_annotator)
        np.add.at(counts["votes"], voter, ranked.votes)
        np.add.at(counts["timed"], voter, ranked.timed)
        np.add.at(counts["fast"], voter, ranked.fast)
    estimate = annotator_reliability(
        AnnotatorEvidence(decisive, ties, counts["left"], counts["gold"], counts["gold_ok"],
                          counts["timed"], counts["fast"]),
        min_gold=campaign.min_gold_for_flag, gold_threshold=campaign.gold_accuracy_threshold,
        min_fast_votes=settings.EVALHUB_FAST_VOTE_MIN_VOTES,
        fast_share=settings.EVALHUB_FAST_VOTE_SHARE)
    excluded = excluded_annotator_ids(campaign=campaign)
    names = dict(get_user_model().objects.filter(pk__in=annotator_ids)
                 .values_list("pk", "username"))
    result = []
    for aid in annotator_ids:
        k = who[aid]
        flags = tuple(estimate.reasons(k))
        result.append(AnnotatorReliability(
            annotator_id=aid, username=names.get(aid, "?"), votes=int(counts["votes"][k]),
            gold_votes=int(counts["gold"][k]), accuracy=float(estimate.accuracy[k]),
            weight=0.0 if aid in excluded else float(estimate.weight[k]),
            estimated_weight=float(estimate.weight[k]),
            left_share=float(estimate.left_share[k]), fast_share=float(estimate.fast_share[k]),
            flags=flags, reasons=tuple(FLAG_REASONS[f] for f in flags),
            excluded=aid in excluded))
    return CampaignReliability(tuple(result))
