"""One reading of the ``since`` / ``until`` bounds every vote filter takes (leaderboards,
exports; API, pages and commands): ISO dates or date-times, naive ones in UTC; ``since`` is
inclusive, ``until`` exclusive, and a date-only ``until`` means through the end of that day
(``until=2026-12-05``, or ``20261205``, keeps the votes of the 5th).

Bounds at the calendar's limits: a time is held (in Python and in the database) between
0001-01-01 and 9999-12-31, in UTC. A bound beyond those limits on the side that excludes no
vote (``since`` before the first moment, ``until`` after the last one: ``until=9999-12-31``,
or ``9999-12-31T23:59:59-01:00``) is read as no bound at all (``None``), which selects exactly
the same votes. One beyond them on the side that would exclude every vote (``since`` after the
last moment, ``until`` before the first) is refused like a malformed value (an
:class:`EvalHubError`: 400 from the API and pages, a command error from the commands)."""

from __future__ import annotations

import re
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from evalhub.core.errors import EvalHubError

# A week without its day, alone or with a time after it (2026-W49, 2026W49T10:00).
_WEEK_ALONE = re.compile(r"\d{4}-?W\d{2}(?!-?\d)")


def parse_when(raw: str, *, name: str, end_of_day: bool) -> datetime | None:
    """``raw`` as an aware datetime in UTC; a date alone is its day's start, or with
    ``end_of_day`` the next day's start (for an exclusive ``until``). ``None`` when the bound
    lies beyond the calendar on the side that excludes nothing (module docstring)."""
    if _WEEK_ALONE.match(raw):
        # date.fromisoformat reads a week without its day as the week's Monday: a week is not
        # a day, and an until of it would keep one day of seven.
        raise EvalHubError(f"{name} must be an ISO date or datetime, got {raw!r} (a week: "
                           "name its day, e.g. 2026-W49-1, or give a date).")
    try:
        # Every ISO form of a date alone is one: extended (2026-12-05), basic (20261205) and
        # week dates (2026-W49-6). Read as a date-time, the basic form would be the day's
        # first instant, and an ``until`` of it would leave out the very day it names.
        day = date.fromisoformat(raw)
    except ValueError:
        day = None
    try:
        value = None if day is not None else parse_datetime(raw)
    except ValueError:
        value = None
    if day is None and value is None:
        raise EvalHubError(f"{name} must be an ISO date or datetime, got {raw!r}.")
    # Which way a value falls off the calendar: its year says (only 1 and 9999 can).
    try:
        if day is not None:
            value = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
        value = value.replace(tzinfo=UTC) if timezone.is_naive(value) else value.astimezone(UTC)
    except OverflowError:
        after_the_end = (day or value).year == MAXYEAR
        if after_the_end == end_of_day:  # since before the start, until after the end
            return None
        edge = "after 9999-12-31, the last" if after_the_end else "before 0001-01-01, the first"
        raise EvalHubError(f"{name} {raw!r} cannot be used: it is {edge} day a time can "
                           "hold (UTC), so no vote could match.") from None
    return value


@extend_schema_field(OpenApiTypes.STR)
class WhenField(serializers.Field):
    """A ``since`` (``end_of_day=False``) or ``until`` (``end_of_day=True``) bound, read by
    :func:`parse_when`."""

    def __init__(self, *, end_of_day: bool, **kwargs: object) -> None:
        self.end_of_day = end_of_day
        kwargs.setdefault("help_text", "ISO date or date-time, UTC if naive" + (
            "; exclusive, a date alone includes that whole day" if end_of_day else
            "; inclusive"))
        super().__init__(**kwargs)

    def to_internal_value(self, data: object) -> datetime | None:
        try:
            return parse_when(str(data).strip(), name=self.field_name,
                              end_of_day=self.end_of_day)
        except EvalHubError as exc:
            raise serializers.ValidationError(exc.message) from exc

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()
