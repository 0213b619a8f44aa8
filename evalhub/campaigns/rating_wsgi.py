"""The annotator's two hot endpoints for API-token clients, answered in front of Django's stack.

Every vote of a scripted or high-volume client is ``POST /api/v1/rate/<id>/votes/`` with an
``Authorization: Token ...`` header. On PostgreSQL the work itself is one database call, so
what Django does around the view dominates the web process's CPU: eight middleware (sessions,
authentication, CSRF, messages, static files...) and the URL resolver walking every pattern,
none of which a token request uses. Measured in-process, they were a third of the Python time
of a vote. This WSGI wrapper routes exactly those requests straight to the same view functions
(rating_views.py) with the parts of Django that still apply to them:

- the Host header is checked against ALLOWED_HOSTS (as CommonMiddleware does for every request);
- SecurityMiddleware (HTTPS redirect, HSTS and the other security headers) and
  XFrameOptionsMiddleware run around the view, as for every other response;
- request_started and request_finished are sent, so database connections are recycled or
  dropped when broken exactly as for Django's own requests;
- an unexpected error is logged on ``django.request`` and answered 500 in JSON;
- the answer carries its Content-Length, as CommonMiddleware sets it.

Anything else (session-cookie requests from the rating page, which must pass the CSRF check,
other methods, other paths) goes to Django unchanged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware

from evalhub.campaigns.rating_views import rate_next_view, rate_vote_view

HOT_PATH = re.compile(r"/api/v1/rate/(?P<campaign_id>[0-9]+)/(?P<action>next|votes)/")
VIEWS = {"next": rate_next_view, "votes": rate_vote_view}

logger = logging.getLogger("django.request")


def is_token_request(environ: dict[str, Any]) -> bool:
    scheme, _, _ = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "token"


def _view_caller(request: HttpRequest) -> HttpResponse:
    try:
        return VIEWS[request.rating_action](request, request.rating_campaign_id)
    except Exception:
        logger.exception("Internal Server Error: %s", request.path, extra={"request": request})
        return JsonResponse({"detail": "A server error occurred."}, status=500)


class RatingFastPath:
    """WSGI application: token POSTs to next/ and votes/ here, everything else to Django."""

    def __init__(self, django_app: WSGIHandler) -> None:
        self.django_app = django_app
        self.respond = SecurityMiddleware(XFrameOptionsMiddleware(_view_caller))

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        match = HOT_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if (match is None or environ.get("REQUEST_METHOD") != "POST"
                or not is_token_request(environ)):
            return self.django_app(environ, start_response)
        signals.request_started.send(sender=self.__class__, environ=environ)
        request = WSGIRequest(environ)
        request.rating_action = match["action"]
        request.rating_campaign_id = int(match["campaign_id"])
        try:
            request.get_host()
        except DisallowedHost:
            response = JsonResponse({"detail": "Invalid Host header."}, status=400)
        else:
            response = self.respond(request)
        # As CommonMiddleware does: a length lets the server keep the connection without chunks.
        response.headers["Content-Length"] = str(len(response.content))
        # Closing the response (the server does) sends request_finished, as Django's does.
        response._resource_closers.append(request.close)
        start_response(f"{response.status_code} {response.reason_phrase}",
                       [*response.items(),
                        *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())])
        return response
