"""Web security pieces that settings.py names: private caching of responses and the client
address for django-axes' per-address sign-in limit (docs/security.md).

The Content-Security-Policy itself comes from django-csp (``CONTENT_SECURITY_POLICY`` in
settings.py); HSTS, secure cookies and the HTTPS redirect from Django's SecurityMiddleware,
switched on together by ``EVALHUB_HTTPS``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

# Pages, API answers and exports hold private data (prompts, unreleased models' images,
# votes): no cache may keep them, neither a shared proxy nor the browser's disk.
PRIVATE_NO_STORE = {"private": True, "no_store": True}


class PrivateCacheMiddleware:
    """Give every response that has no ``Cache-Control`` of its own ``private, no-store``.

    A view that chose its caching keeps it: media and tiles (private, kept by the browser;
    evalhub/blobs/views.py), the public plotly.js library, Django's ``never_cache`` on the
    login page, the static files WhiteNoise answers before this middleware runs.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            patch_cache_control(response, **PRIVATE_NO_STORE)
        return response


def client_ip(request: HttpRequest) -> str | None:
    """The address a request came from, for django-axes' per-address lockout.

    With ``EVALHUB_PROXY_COUNT = n > 0`` reverse proxies in front of the web server, each
    proxy appends the address it received the request from to ``X-Forwarded-For``, so the
    client's address is the n-th entry from the right; entries further left were written by
    the client and may be forged, so they are never read. Without proxies (n = 0) it is
    ``REMOTE_ADDR``. A request with fewer entries than proxies did not come through them:
    ``REMOTE_ADDR`` is used, so a forged header cannot choose the address.
    """
    proxies = settings.EVALHUB_PROXY_COUNT
    remote = request.META.get("REMOTE_ADDR")
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
                 if part.strip()]
    if len(forwarded) < proxies:
        return remote
    return forwarded[-proxies]
