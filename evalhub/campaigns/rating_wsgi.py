"""The annotator's two hot endpoints for header-token clients, answered by a lean Django handler.

Every vote of a scripted or high-volume client is ``POST /api/v1/rate/<id>/votes/`` with an
``Authorization: Token ...`` header, and every vote of the rating page carries
``Authorization: Rating ...`` (a signed rating token, rating_tokens.py). On PostgreSQL the
work itself is one database call, so what Django does around the view dominates the web
process's CPU: eight middleware (sessions, authentication, CSRF, messages, static files...)
and the URL resolver walking every pattern, none of which a header-token request uses.
Measured in-process, they were a third of the Python time of a vote. This WSGI wrapper routes
exactly those requests to a second Django ``WSGIHandler`` (script prefix, request signals and
so connection recycling, cookies, error logging all as usual) whose middleware chain is only
what still applies to them:

- SecurityMiddleware: HTTPS redirect, HSTS and the other security headers;
- CommonMiddleware: the Host header checked against ALLOWED_HOSTS, Content-Length;
- XFrameOptionsMiddleware;

then the same view functions as the URLconf's (rating_views.py), without the URL resolver. An
unexpected error in the view is logged on ``django.request`` and answered 500 in JSON.

Anything else (session-cookie requests, which must pass the CSRF check, other methods, other
paths) goes to the full Django stack unchanged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware

from evalhub.campaigns.rating_tokens import SCHEME as RATING_SCHEME
from evalhub.campaigns.rating_views import rate_next_view, rate_vote_view

HOT_PATH = re.compile(r"/api/v1/rate/(?P<campaign_id>[0-9]+)/(?P<action>next|votes)/")
VIEWS = {"next": rate_next_view, "votes": rate_vote_view}
MIDDLEWARE = [SecurityMiddleware, CommonMiddleware, XFrameOptionsMiddleware]
ROUTE_KEY = "evalhub.rating_route"  # environ key: the matched (action, campaign id)
HEADER_SCHEMES = {"token", RATING_SCHEME.lower()}  # API tokens, the rating page's tokens

logger = logging.getLogger("django.request")


def is_token_request(environ: dict[str, Any]) -> bool:
    scheme, _, _ = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() in HEADER_SCHEMES


def _view_caller(request: HttpRequest) -> HttpResponse:
    action, campaign_id = request.META[ROUTE_KEY]
    try:
        return VIEWS[action](request, campaign_id)
    except Exception:
        logger.exception("Internal Server Error: %s", request.path, extra={"request": request})
        return JsonResponse({"detail": "A server error occurred."}, status=500)


class TokenRatingHandler(WSGIHandler):
    """Django's WSGI handler with the short middleware chain above and no URL resolver."""

    def load_middleware(self, is_async: bool = False) -> None:
        # As BaseHandler.load_middleware builds it: each layer turns exceptions into responses
        # (a DisallowedHost into a 400) that the layers outside it still process.
        handler = convert_exception_to_response(_view_caller)
        for middleware in reversed(MIDDLEWARE):
            handler = convert_exception_to_response(middleware(handler))
        self._middleware_chain = handler


class RatingFastPath:
    """WSGI application: header-token POSTs to next/ and votes/ to the lean handler, else Django."""

    def __init__(self, django_app: WSGIHandler) -> None:
        self.django_app = django_app
        self.token_handler = TokenRatingHandler()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        match = HOT_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if (match is None or environ.get("REQUEST_METHOD") != "POST"
                or not is_token_request(environ)):
            return self.django_app(environ, start_response)
        environ[ROUTE_KEY] = (match["action"], int(match["campaign_id"]))
        return self.token_handler(environ, start_response)
