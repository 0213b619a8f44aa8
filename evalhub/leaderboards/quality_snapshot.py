"""A campaign's annotator quality, computed by the leaderboards' refresh and read by the pages.

What is stored (:class:`~evalhub.leaderboards.models.QualitySnapshot`, one per campaign):

- the crowd-BT reliability of every annotator (:func:`campaign_reliability`: an EM over all the
  campaign's votes, the costly part), with the flags, their reasons and the vote weights,
- gold accuracy and vote times per annotator (:func:`annotator_quality`), whose flags, reasons
  and weights are the estimate's (read back through ``annotators.with_reliability``: one
  source of flags for the campaign page, the quality API and the dashboard),
- Krippendorff's alpha per criterion (:func:`agreement_by_criterion`),
- votes per annotator (:func:`annotator_progress`).

It is written by :func:`quality_snapshot_refresh`, which the background refresh of the
leaderboards runs after votes (``evalhub.leaderboards.refresh``, debounced), so a page reads
one row instead of reading every vote. :func:`quality_get` returns it with when it was computed
and whether it is stale (the campaign's data fingerprint changed since); a stale one is shown
as it is and a refresh is queued, a missing one (or one of an older schema) is computed at
once. Who is excluded is read live (one query) and applied to the stored rows, so an
exclusion shows on the next page view; the figures that depend on it (agreement, the estimate)
follow with the refresh the exclusion queues.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from evalhub.campaigns.manage.selectors import AnnotatorProgress, annotator_progress
from evalhub.campaigns.models import Campaign
from evalhub.campaigns.quality.agreement import agreement_by_criterion
from evalhub.campaigns.quality.annotators import (
    AnnotatorQuality,
    annotator_quality,
    excluded_annotator_ids,
    with_reliability,
)
from evalhub.campaigns.quality.reliability import CampaignReliability, campaign_reliability
from evalhub.leaderboards.fingerprint import ChangesSince, changes_since, data_fingerprint
from evalhub.leaderboards.models import QualitySnapshot

#: The payload's layout; a payload of another schema (older code) is recomputed before use.
#: 2: vote times from when the pair could be on screen; annotators' flags, reasons and weight
#: from the reliability estimate.
QUALITY_SCHEMA = 2


@dataclass(frozen=True)
class CampaignQuality:
    """A campaign's stored annotator quality, exclusions applied as they are now.

    ``stale``: votes, exclusions or runs changed after ``computed_at`` (``changes`` says which;
    a refresh is queued).
    """

    reliability: CampaignReliability
    annotators: tuple[AnnotatorQuality, ...]
    agreement: dict[str, dict]
    progress: tuple[AnnotatorProgress, ...]
    computed_at: datetime
    stale: bool
    changes: ChangesSince | None


def _payload(campaign: Campaign) -> dict:
    progress = [{**dataclasses.asdict(row),
                 "last_vote_at": row.last_vote_at.isoformat() if row.last_vote_at else None}
                for row in annotator_progress(campaign=campaign)]
    reliability = campaign_reliability(campaign=campaign)
    return {"schema": QUALITY_SCHEMA,
            "reliability": reliability.to_json(),
            "annotators": [dataclasses.asdict(row) for row in
                           annotator_quality(campaign=campaign, reliability=reliability)],
            "agreement": agreement_by_criterion(campaign=campaign),
            "progress": progress}


def quality_snapshot_refresh(*, campaign: Campaign, fingerprint: str | None = None
                             ) -> QualitySnapshot:
    """Compute and store the annotator quality of ``campaign`` (module docstring).

    ``fingerprint``: the data fingerprint taken before computing (taken here when None), so a
    vote arriving meanwhile leaves the snapshot stale rather than wrongly fresh.
    """
    fingerprint = data_fingerprint(campaign=campaign) if fingerprint is None else fingerprint
    defaults = {"payload": _payload(campaign), "fingerprint": fingerprint,
                "computed_at": timezone.now()}
    try:
        with transaction.atomic():
            snapshot, _ = QualitySnapshot.objects.update_or_create(campaign=campaign,
                                                                   defaults=defaults)
    except IntegrityError:  # a concurrent refresh created it first
        snapshot, _ = QualitySnapshot.objects.update_or_create(campaign=campaign,
                                                               defaults=defaults)
    return snapshot


def _decoded(snapshot: QualitySnapshot, *, excluded: set[int], stale: bool,
             changes: ChangesSince | None) -> CampaignQuality:
    payload = snapshot.payload
    reliability = CampaignReliability.from_json(payload["reliability"]).with_exclusions(excluded)
    stored = (AnnotatorQuality(**{**row, "flags": tuple(row["flags"]),
                                  "reasons": tuple(row["reasons"]),
                                  "excluded": row["annotator_id"] in excluded})
              for row in payload["annotators"])
    return CampaignQuality(
        reliability=reliability,
        # The flags, reasons and weights of the estimate, exclusions as they are now.
        annotators=tuple(with_reliability(stored, reliability)),
        agreement=payload["agreement"],
        progress=tuple(AnnotatorProgress(**{**row, "last_vote_at": parse_datetime(
            row["last_vote_at"]) if row["last_vote_at"] else None})
            for row in payload["progress"]),
        computed_at=snapshot.computed_at, stale=stale, changes=changes)


def stored_quality(*, campaign: Campaign) -> QualitySnapshot | None:
    """The stored snapshot when it is of the current schema, else None."""
    snapshot = QualitySnapshot.objects.filter(campaign=campaign).first()
    if snapshot is None or snapshot.payload.get("schema") != QUALITY_SCHEMA:
        return None
    return snapshot


def quality_get(*, campaign: Campaign, fingerprint: str | None = None) -> CampaignQuality:
    """The campaign's annotator quality for a page (module docstring): stored, computed now
    when missing, a refresh queued when stale. ``fingerprint``: the current data fingerprint
    when the caller has it already."""
    # Imported here: services imports this module to refresh the snapshot.
    from evalhub.leaderboards.services import leaderboard_refresh_schedule

    fingerprint = data_fingerprint(campaign=campaign) if fingerprint is None else fingerprint
    snapshot = stored_quality(campaign=campaign)
    if snapshot is None:
        snapshot = quality_snapshot_refresh(campaign=campaign, fingerprint=fingerprint)
    stale = snapshot.fingerprint != fingerprint
    if stale:
        leaderboard_refresh_schedule(campaign=campaign)
    return _decoded(snapshot, excluded=excluded_annotator_ids(campaign=campaign), stale=stale,
                    changes=changes_since(campaign=campaign, since=snapshot.computed_at)
                    if stale else None)


def current_reliability(*, campaign: Campaign) -> CampaignReliability:
    """The reliability a leaderboard computed now should use: the stored estimate when
    nothing changed since it was computed (a filtered leaderboard then costs no EM), else
    estimated now."""
    snapshot = stored_quality(campaign=campaign)
    if snapshot is not None and snapshot.fingerprint == data_fingerprint(campaign=campaign):
        # Fresh: the exclusions it was computed with are today's (they are in the fingerprint).
        return CampaignReliability.from_json(snapshot.payload["reliability"])
    return campaign_reliability(campaign=campaign)
