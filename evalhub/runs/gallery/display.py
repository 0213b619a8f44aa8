"""Stored values (an image's metadata, a run's parameters: JSON) written for people: no Python
reprs (``None``, ``True``, ``{'width': ...}``) on the image page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

#: What the page writes for no value (as its other "no value" cells do).
NO_VALUE = "\u2013"  # an en dash


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple)


def readable_value(value: Any) -> SafeString:
    """``value`` as escaped HTML: ``NO_VALUE`` for None (and an empty list or mapping),
    yes / no for booleans, numbers and strings as they are; a list of plain values or a mapping
    of plain values on one line ("width: <NO_VALUE>, quality: 0.3", "1, 2"); a list or mapping
    holding lists or mappings as a ``<ul class="nested">``, one item per entry, each written
    the same way."""
    if value is None:
        return mark_safe(NO_VALUE)
    if isinstance(value, bool):  # before numbers: True is an int
        return mark_safe("yes" if value else "no")
    if isinstance(value, Mapping):
        entries = [(str(key), readable_value(item)) for key, item in value.items()]
        nested = any(_is_container(item) and item for item in value.values())
    elif isinstance(value, list | tuple):
        entries = [(None, readable_value(item)) for item in value]
        nested = any(_is_container(item) and item for item in value)
    else:
        return conditional_escape(str(value))
    if not entries:
        return mark_safe(NO_VALUE)
    parts = [format_html("{}: {}", key, text) if key is not None else text
             for key, text in entries]
    if not nested:
        return mark_safe(", ".join(parts))
    return format_html('<ul class="nested">{}</ul>',
                       format_html_join("", "<li>{}</li>", ((part,) for part in parts)))


def readable_rows(values: Any) -> list[tuple[str, SafeString]]:
    """A key-value table's rows for a stored mapping (key, :func:`readable_value`); anything
    else stored (a list, a number) as one row named "value"."""
    if not values:
        return []
    if not isinstance(values, Mapping):
        return [("value", readable_value(values))]
    return [(str(key), readable_value(value)) for key, value in values.items()]
