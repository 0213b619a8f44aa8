"""Map domain errors to HTTP responses so views need no try/except."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from evalhub.core.errors import EvalHubError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, EvalHubError):
        return Response(
            {"detail": exc.message, "errors": exc.details},
            status=exc.http_status,
        )
    return drf_exception_handler(exc, context)
