"""Web security pieces that settings.py names: the Content-Security-Policy header, private
caching of responses and the client address for django-axes' per-address sign-in limit
(docs/security.md).

The Content-Security-Policy itself is django-csp's (``CONTENT_SECURITY_POLICY`` in settings.py),
its header written by :class:`CSPMiddleware`; HSTS, secure cookies and the HTTPS redirect come
from Django's SecurityMiddleware, switched on together by ``EVALHUB_HTTPS``.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable
from typing import Any

from csp import middleware as csp_middleware
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import patch_cache_control

# What a view or a template can change of one response's policy (django-csp's decorators and
# the nonce a template asks for); a response with none of them gets the settings' policy.
_PER_RESPONSE = ("_csp_config", "_csp_update", "_csp_replace",
                 "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro")
# (header, settings name) of the enforced and the report-only policy.
_POLICIES = ((HEADER, "CONTENT_SECURITY_POLICY"),
             (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY"))
# Header -> the policy's text built from the settings ("" when there is none); emptied when a
# test changes the settings.
_BUILT: dict[str, str] = {}


@receiver(setting_changed)
def _forget_built_policies(*, setting: str, **kwargs: Any) -> None:
    if setting in dict(_POLICIES).values():
        _BUILT.clear()


class CSPMiddleware(csp_middleware.CSPMiddleware):
    """django-csp's middleware, with the settings' policy built once per process.

    django-csp rebuilds both headers from the settings on every response (copying and joining
    every directive's sources twice): a fixed cost of every request, the rating API's included,
    for a text that changes only with the settings. A response whose policy is its own (a
    nonce asked for, django-csp's ``csp_update``/``csp_replace``/``csp_exempt`` decorators)
    goes through django-csp's own code; every other response gets the built text, under
    exactly the rules of django-csp 4.0 (no header over one the view set, none for an excluded
    path prefix, none for Django's debug error pages).
    """

    def process_response(self, request: HttpRequest,
                         response: HttpResponseBase) -> HttpResponseBase:
        if (getattr(request, "_csp_nonce", None) is not None
                or any(hasattr(response, name) for name in _PER_RESPONSE)
                or getattr(response, "_csp_exempt", False)
                or getattr(response, "_csp_exempt_ro", False)):
            return super().process_response(request, response)
        if response.status_code in (http.client.INTERNAL_SERVER_ERROR,
                                    http.client.NOT_FOUND) and settings.DEBUG:
            return response
        for header, setting in _POLICIES:
            text = _BUILT.get(header)
            if text is None:
                text = _BUILT[header] = build_policy(report_only=header == HEADER_REPORT_ONLY)
            if text and header not in response:
                policy = getattr(settings, setting, None) or {}
                prefixes = policy.get("EXCLUDE_URL_PREFIXES", None) or ()
                if not request.path_info.startswith(tuple(prefixes)):
                    response[header] = text
        # As django-csp: a nonce asked for after the header is written is an error.
        request.csp_nonce = csp_middleware.CheckableLazyObject(  # type: ignore[attr-defined]
            self._csp_nonce_post_response)
        return response

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
