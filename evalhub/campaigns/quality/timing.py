"""A vote's response time by the server's clock, and the votes under the fast-vote floor.

The one rule, for every page, API and estimate that times votes: a vote's response time is its
judgment's ``created_at`` minus the moment its pair could first have been on screen, the later
of

- its lease's ``leased_at`` (the pair cannot be shown before it was leased), and
- the same annotator's previous vote in the campaign (``created_at``): the rating page holds the
  next pair leased behind the one on screen, so a lease is taken one vote before its pair is
  shown, and timed from the lease alone a vote would span two vote intervals (a key pressed
  every 350 ms read as 700 ms per vote).

An annotator's first vote is timed from its lease; a vote whose lease is gone is untimed. The
``latency_ms`` the page reports is kept for analysis but trusted for nothing: a client cannot
fake either timestamp.

A vote is the annotator's live human judgment on the overall criterion (one per vote: a vote on
a pair asked several questions stores one judgment per criterion, microseconds apart, which
must not time each other). Below ``EVALHUB_FAST_VOTE_FLOOR_MS`` (700 ms by default) a vote is
implausibly fast: too short to look at and compare two images.

The previous vote is a window function, ``LAG(created_at) OVER (PARTITION BY annotator ORDER
BY created_at, id)`` (PostgreSQL and SQLite alike).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Case, Count, DateTimeField, F, Q, QuerySet, Value, When, Window
from django.db.models.functions import Coalesce, Greatest, Lag

from evalhub.campaigns.models import Campaign, Criterion, Judgment
from evalhub.campaigns.quality.votes import human_judgments

__all__ = ["fast_vote_floor", "fast_vote_ids", "timed_counts", "timed_votes"]


def fast_vote_floor() -> timedelta:
    """``EVALHUB_FAST_VOTE_FLOOR_MS`` as a duration."""
    return timedelta(milliseconds=settings.EVALHUB_FAST_VOTE_FLOOR_MS)


def timed_votes(*, campaign: Campaign) -> QuerySet[Judgment]:
    """The campaign's votes (live human judgments, overall criterion), each annotated with
    ``shown_at``: when its pair could first have been on screen (module docstring), None for a
    vote whose lease is gone. Response time = ``created_at - shown_at``."""
    previous = Window(Lag("created_at"), partition_by=[F("annotator_id")],
                      order_by=[F("created_at").asc(), F("id").asc()])
    leased = F("lease__leased_at")
    # GREATEST skips NULLs on PostgreSQL but returns NULL on SQLite: no NULL reaches it.
    return human_judgments(campaign).filter(criterion=Criterion.OVERALL).annotate(
        shown_at=Case(When(lease__leased_at__isnull=True, then=Value(None)),
                      default=Greatest(leased, Coalesce(previous, leased)),
                      output_field=DateTimeField()))


def fast_vote_ids(*, campaign: Campaign) -> QuerySet[Judgment]:
    """Ids of the campaign's votes under the fast-vote floor: ``created_at - shown_at <
    floor`` (a subquery; the window runs before the filter, over all the annotator's votes)."""
    return (timed_votes(campaign=campaign)
            .filter(created_at__lt=F("shown_at") + fast_vote_floor()).values("id"))


def timed_counts(*, campaign: Campaign) -> dict[str, Count]:
    """Aggregates for a grouped query of the campaign's judgments: ``n_timed`` votes with a
    server-measured time (a lease), ``n_fast`` of them under the fast-vote floor."""
    return {"n_timed": Count("id", filter=Q(lease__leased_at__isnull=False)),
            "n_fast": Count("id", filter=Q(id__in=fast_vote_ids(campaign=campaign)))}
