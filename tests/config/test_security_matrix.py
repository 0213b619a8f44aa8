"""docs/security.md's permission matrix names every URL of the application: a new URL fails
here until someone writes down who may use it."""

from __future__ import annotations

import re
from pathlib import Path

from django.urls import URLPattern, URLResolver, get_resolver

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def _named_routes(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _named_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.name


def test_every_url_of_the_application_is_in_the_permission_matrix():
    matrix = DOC.read_text().split("## Permission matrix", 1)[1]
    documented = set(re.findall(r"`([a-z0-9-_]+)`", matrix))
    routes = [(route, name) for route, name in _named_routes(get_resolver().url_patterns)
              if not route.startswith("admin/")]
    assert len(routes) > 40
    unnamed = [route for route, name in routes if not name]
    assert unnamed == []
    missing = sorted({name for _, name in routes} - documented)
    assert missing == []
