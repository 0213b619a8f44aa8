"""One reading of the ``since`` / ``until`` bounds every vote filter takes (leaderboards,
exports; API, pages and commands): ISO dates or date-times, naive ones in UTC; ``since`` is
inclusive, ``until`` exclusive, and a date-only ``until`` means through the end of that day
(``until=2026-12-05`` keeps the votes of the 5th)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from evalhub.core.errors import EvalHubError


def parse_when(raw: str, *, name: str, end_of_day: bool) -> datetime:
    """``raw`` as an aware datetime; a date alone is its day's start, or with ``end_of_day``
    the next day's start (for an exclusive ``until``)."""
    try:
        day = parse_date(raw) if len(raw) == 10 else None
        value = None if day is not None else parse_datetime(raw)
    except ValueError:
        day = value = None
    if day is not None:
        value = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
    if value is None:
        raise EvalHubError(f"{name} must be an ISO date or datetime, got {raw!r}.")
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
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

    def to_internal_value(self, data: object) -> datetime:
        try:
            return parse_when(str(data).strip(), name=self.field_name,
                              end_of_day=self.end_of_day)
        except EvalHubError as exc:
            raise serializers.ValidationError(exc.message) from exc

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()
