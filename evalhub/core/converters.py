"""URL parts for object ids: digits that fit a database integer, nothing else.

``<int:...>`` accepts any number of digits, and PostgreSQL refuses a number past bigint with an
error (a 500); an id pattern of at most 18 digits answers 404 for anything that cannot be an id.
"""

from __future__ import annotations

from typing import Any

from rest_framework.routers import DefaultRouter, SimpleRouter

ID_REGEX = "[0-9]{1,18}"


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
