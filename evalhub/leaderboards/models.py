"""Cached leaderboards: one snapshot per campaign, criterion and filter combination."""

from django.db import models

from evalhub.campaigns.models import Campaign
from evalhub.leaderboards.results import Leaderboard


class LeaderboardSnapshot(models.Model):
    """A computed leaderboard: ``payload`` is :meth:`Leaderboard.to_json` (see
    ``evalhub.leaderboards.selectors.leaderboard_compute``), read back as :attr:`result`.

    ``filters_hash`` identifies the filter combination (judge, category, annotator quality, time
    window); ``fingerprint`` identifies the data the payload was computed from, so a snapshot
    whose fingerprint no longer matches the database is stale. A payload whose ``schema`` is
    not the current one (written by older code) is recomputed before it is read.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE,
                                 related_name="leaderboard_snapshots")
    criterion = models.CharField(max_length=20)
    filters_hash = models.CharField(max_length=64)
    filters = models.JSONField(default=dict, blank=True)
    is_default = models.BooleanField(
        default=False, help_text="Human votes, no filters: refreshed in the background.")
    payload = models.JSONField(default=dict)
    fingerprint = models.CharField(max_length=64, blank=True)
    votes_count = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField()
    charts = models.JSONField(
        default=dict, blank=True,
        help_text="The dashboard's figures of this payload, drawn when it was computed "
                  "(charts.snapshot_figures): no plotly work per page view.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "criterion", "filters_hash"],
                                               name="one_snapshot_per_filter")]

    def __str__(self) -> str:
        return f"leaderboard {self.campaign_id}/{self.criterion} @ {self.computed_at:%Y-%m-%d}"

    @property
    def result(self) -> Leaderboard:
        """The stored leaderboard (``payload`` must be of the current schema)."""
        return Leaderboard.from_json(self.payload)


class LeaderboardRefresh(models.Model):
    """Debounce state: when a background refresh of a campaign's leaderboards was last queued."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE,
                                    related_name="leaderboard_refresh")
    enqueued_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"refresh of {self.campaign_id} queued {self.enqueued_at:%H:%M:%S}"


class QualitySnapshot(models.Model):
    """A campaign's annotator quality as the leaderboards' refresh computed it
    (``evalhub.leaderboards.quality_snapshot``): the crowd-BT reliability of every annotator,
    gold accuracy and fast votes, agreement per criterion, votes per annotator. The pages read
    it instead of estimating per request; ``fingerprint`` (``leaderboards.fingerprint``) says
    whether it is stale. Who is excluded is read live and applied to it.
    """

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE,
                                    related_name="quality_snapshot")
    payload = models.JSONField(default=dict)
    fingerprint = models.CharField(max_length=64, blank=True)
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"annotator quality of {self.campaign_id} @ {self.computed_at:%Y-%m-%d %H:%M}"
