"""Template filters for user-written text (``{% load text %}``)."""

from __future__ import annotations

from django import template
from django.template.defaultfilters import stringfilter

from evalhub.core.text import isolated

register = template.Library()


@register.filter(is_safe=True)
@stringfilter
def isolate(value: str) -> str:
    """``{{ run.name|isolate }}``: the name between Unicode isolates (core.text.isolated), for
    a ``<title>`` or an ``<option>``'s label, which cannot hold a ``<bdi>``. Safe in, safe out:
    the isolates are not markup; the name is escaped as any other value."""
    return isolated(value)
