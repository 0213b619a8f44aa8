"""The probes (``/healthz``, ``/readyz``) and ``/metrics``, answered before Django checks the
Host header or redirects to HTTPS.

Why: an orchestrator probes a container from inside it (``http://127.0.0.1:8000/healthz``),
and Prometheus scrapes it by its internal address, over plain HTTP. With ALLOWED_HOSTS set to
the public name (as a deployment must) or EVALHUB_HTTPS=1, those requests were answered 400
(DisallowedHost) or 301 to https, so a healthy container was restarted as unhealthy. The three
views read no Host and build no URL; ``/metrics`` keeps its own guard (a token, or loopback
only).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import resolve

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# What every other answer gets from the security, CSP and cache middleware the probes run
# ahead of (docs/security.md): a probe's body is JSON or text, so it may load nothing at all.
PROBE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class ProbeMiddleware:
    """Runs the probe paths' views (as the URLconf routes them) ahead of SecurityMiddleware and
    CommonMiddleware; placed after the request-id and metrics middleware, so that probes are
    logged and counted under their view names."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in PROBE_PATHS or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        match = resolve(request.path_info)
        request.resolver_match = match
        response = match.func(request, *match.args, **match.kwargs)
        for header, value in PROBE_HEADERS.items():
            response[header] = value
        return response
