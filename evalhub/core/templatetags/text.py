"""Template filters for user-written text (``{% load text %}``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django import template
from django.template.defaultfilters import stringfilter
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

from evalhub.core.text import isolated

register = template.Library()


@register.filter(is_safe=True)
@stringfilter
def isolate(value: str) -> str:
    """``{{ run.name|isolate }}``: the name between Unicode isolates (core.text.isolated), for
    a ``<title>`` or an ``<option>``'s label, which cannot hold a ``<bdi>``. Safe in, safe out:
    the isolates are not markup; the name is escaped as any other value."""
    return isolated(value)


@register.filter(needs_autoescape=True)
def bdi_names(text: str, named: Iterable[Any], autoescape: bool = True) -> SafeString:
    """``{{ warning|bdi_names:board.runs }}``: ``text`` escaped, with each name of ``named``
    (objects with a ``name``, or strings) that it quotes in a ``<bdi>``, as pages print
    names (docs/accessibility.md): a message built as text around names ("runs ריצה 30,
    ריצה 5 never won") would otherwise let a right-to-left name reorder the words and
    numbers beside it. A name is matched whole, between spaces, commas, braces or slashes
    (how the messages list names), longest first."""
    names = sorted({str(getattr(item, "name", item)) for item in named} - {""},
                   key=len, reverse=True)
    escape = conditional_escape if autoescape else str
    if not names:
        return mark_safe(escape(text))
    pattern = re.compile(r"(?<![^\s,{/])(" + "|".join(re.escape(n) for n in names)
                         + r")(?![^\s,}/;.])")
    parts = pattern.split(str(text))
    # split() with one group: the text between matches at even indices, the names at odd.
    return mark_safe("".join(
        format_html("<bdi>{}</bdi>", part) if index % 2 else escape(part)
        for index, part in enumerate(parts)))
