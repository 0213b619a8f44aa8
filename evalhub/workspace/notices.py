"""What a form's import (or a run's launch) said, shown on the page its answer redirects to.

A form that stores something answers with a redirect; what the import has to say besides (how
much it took, the files it skipped: runs/importing/answers.py), or what a launch queued (or
that nothing was left to generate: workspace/views.py ``run_launch``), is kept in the caller's
session under a random key that the redirect's URL names (``?notice=<key>``), and every page of the
workspace shows it while its URL names that key. Not django.contrib.messages, whose message is
gone once read: static/js/workspace/upload.js reads the page twice (its XMLHttpRequest follows
the redirect, then the browser opens the URL the request ended on), so its first read would
take the message away from the page the user sees. The key means nothing in another session.
"""

from __future__ import annotations

import secrets

from django.http import HttpRequest

SESSION_KEY = "workspace_notices"
#: Notices a session keeps (the latest): an older key shows nothing.
KEPT = 10


def notice_add(request: HttpRequest, lines: list[str]) -> str:
    """Keep ``lines`` in the session; the key for :func:`notice_query`."""
    notices = dict(request.session.get(SESSION_KEY, {}))
    key = secrets.token_urlsafe(9)
    notices[key] = lines
    request.session[SESSION_KEY] = dict(list(notices.items())[-KEPT:])  # in insertion order
    return key


def notice_query(key: str) -> str:
    """The query string that names notice ``key`` (appended to the redirect's URL)."""
    return f"?notice={key}"


def notice_lines(request: HttpRequest) -> list[str]:
    """The lines of the notice this request's URL names in its session (none: ``[]``)."""
    key = request.GET.get("notice")
    if not key:
        return []
    return list(request.session.get(SESSION_KEY, {}).get(key, []))
