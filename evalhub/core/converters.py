"""Object ids in URLs and inputs: whole numbers that fit a database integer, nothing else.

``<int:...>`` accepts any number of digits, and PostgreSQL refuses a number past bigint with an
error (a 500); an id pattern of at most 18 digits answers 404 for anything that cannot be an id.
An id given in a body or a query string is read by :func:`whole_number` (the API's relation
fields, its list filters); the pages' and the leaderboard API's own parameters (``pool``,
``ab``, the A/B form, the gallery) by :func:`object_id`, the URL pattern's rule.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.routers import DefaultRouter, SimpleRouter

from evalhub.core.limits import MAX_INT64, MIN_INT64

ID_REGEX = "[0-9]{1,18}"

_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,30}")


def whole_number(value: Any) -> int | None:
    """``value`` as a whole number, None when it is not one: an ``int`` (never a bool, which
    Python counts as one) or a string of ASCII digits with an optional sign (what a query
    string or a form sends). A float (``1.5``, and ``2.0`` too), ``"1.5"``, ``"1e3"``,
    ``"1_000"`` or another script's digits are not: ``int()`` truncated 1.9 to 1 and so chose
    an object the client did not name."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value)
    return None


_ID = re.compile(ID_REGEX)


def object_id(raw: str) -> int | None:
    """``raw`` (a query parameter, a form field, one item of a list of ids) as an object id:
    1 to 18 ASCII digits, else None. ``str.isdigit()`` is no test: it accepts digits ``int()``
    refuses ("²", a 500) or reads as another script's (Arabic-Indic one is 1)."""
    return int(raw) if _ID.fullmatch(raw) else None


def fits_id_column(number: int) -> bool:
    """Whether ``number`` fits a 64-bit id column; a larger one can name no object."""
    return MIN_INT64 <= number <= MAX_INT64


class IdConverter:
    regex = ID_REGEX

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


class IdLookupMixin:
    """DRF routers whose detail routes match ids only (viewsets may still set their own)."""

    def get_lookup_regex(self, viewset: Any, lookup_prefix: str = "") -> str:
        lookup_field = getattr(viewset, "lookup_field", "pk")
        kwarg = getattr(viewset, "lookup_url_kwarg", None) or lookup_field
        value = getattr(viewset, "lookup_value_regex", ID_REGEX)
        return f"(?P<{lookup_prefix}{kwarg}>{value})"


class IdRouter(IdLookupMixin, DefaultRouter):
    pass


class IdSimpleRouter(IdLookupMixin, SimpleRouter):
    pass
