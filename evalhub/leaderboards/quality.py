"""Annotator quality control in leaderboards: leave flagged annotators out, or weight votes.

The ``quality`` filter (query parameter, command option) picks one of:

- ``""`` (default): every vote but those of annotators the scientists excluded;
- ``exclude``: also leave out every annotator flagged by
  :func:`evalhub.campaigns.quality.reliability.campaign_reliability` (gold, fast, position,
  accuracy; reasons in ``ratings.reliability.FLAG_REASONS``);

(the estimate the refresh stored when it is current: ``quality_snapshot.current_reliability``)
- ``weight``: count each vote with its annotator's crowd-BT weight
  :math:`w_k = \\max(0, 2\\hat\\eta_k - 1)^2 (1 - |2\\ell_k - 1|)(1 - f_k)` (formula and
  derivation in :mod:`ratings.reliability`). The Bradley-Terry fit takes the weighted counts as
  they are; the bootstrap resamples each cell's weighted count rounded to whole votes. A
  best-of-K ranking counts its annotator's weight too, in the joint Plackett-Luce fit
  (``leaderboards/kwise.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import Count, QuerySet

from evalhub.campaigns.models import Campaign, Judgment
from evalhub.campaigns.quality.reliability import CampaignReliability
from evalhub.leaderboards.quality_snapshot import current_reliability
from ratings import encode_outcomes

QUALITY_ALL, QUALITY_EXCLUDE, QUALITY_WEIGHT = "", "exclude", "weight"
QUALITY_MODES: dict[str, str] = {
    QUALITY_ALL: "all annotators (quality control off)",
    QUALITY_EXCLUDE: "leave flagged annotators out",
    QUALITY_WEIGHT: "weight annotators by reliability",
}
UNCATEGORISED = "(uncategorised)"


def quality_filtered(qs: QuerySet[Judgment], *, campaign: Campaign, quality: str
                     ) -> QuerySet[Judgment]:
    """``qs`` less the flagged annotators' votes when ``quality == "exclude"``."""
    if quality != QUALITY_EXCLUDE:
        return qs
    flagged = current_reliability(campaign=campaign).flagged_ids()
    return qs.exclude(annotator_id__in=flagged) if flagged else qs


def weighted_grouped_votes(qs: QuerySet[Judgment], index: dict[int, int], *,
                           weights: dict[int, float]
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """As the leaderboard's ``_grouped_votes`` (a_idx, b_idx, outcome codes, counts,
    categories), each vote counted with its annotator's weight (``weights``: annotator id ->
    crowd-BT weight; one row per annotator too)."""
    rows = (qs.values("task__prompt__category", "task__run_a_id", "task__run_b_id", "outcome",
                      "annotator_id").annotate(count=Count("id")).order_by())
    a, b, o, c, cats = [], [], [], [], []
    for row in rows:
        ia, ib = index.get(row["task__run_a_id"]), index.get(row["task__run_b_id"])
        weight = weights.get(row["annotator_id"], 0.0)
        if ia is None or ib is None or ia == ib or weight <= 0.0:
            continue
        a.append(ia)
        b.append(ib)
        o.append(row["outcome"])
        c.append(row["count"] * weight)
        cats.append(row["task__prompt__category"] or UNCATEGORISED)
    return (np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), encode_outcomes(o),
            np.asarray(c, dtype=np.float64), cats)


@dataclass(frozen=True)
class AnnotatorTreatment:
    """What a leaderboard under one ``quality`` mode does with one annotator, and why."""

    username: str
    votes: int
    accuracy: float
    weight_percent: int
    reasons: tuple[str, ...]
    treatment: str  # "left out", "weight 12 %", "counted in full"


def annotator_treatments(*, reliability: CampaignReliability, quality: str
                         ) -> list[AnnotatorTreatment]:
    """The annotators excluded, flagged or down-weighted in a campaign (``reliability``: its
    stored estimate, ``quality_snapshot.quality_get``), with their reasons and what the
    ``quality`` mode does with their votes (for the dashboard)."""
    result = []
    for row in reliability.affected():
        reasons = (("excluded by a scientist",) if row.excluded else ()) + row.reasons
        if not reasons:
            reasons = ("low crowd-BT weight",)
        if row.excluded or (quality == QUALITY_EXCLUDE and row.flags):
            treatment = "left out"
        elif quality == QUALITY_WEIGHT:
            treatment = f"weight {row.weight_percent} %"
        else:
            treatment = "counted in full"
        result.append(AnnotatorTreatment(
            username=row.username, votes=row.votes, accuracy=round(row.accuracy, 3),
            weight_percent=row.weight_percent, reasons=reasons, treatment=treatment))
    return result
