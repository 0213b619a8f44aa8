"""Map errors to HTTP answers so views need no try/except, and no input produces a 500.

Domain errors carry their status (400 unless they say otherwise). Database refusals that an
input can cause become client errors: a delete blocked by objects that still use the object
(409, naming how many of which kind), a conflict with existing rows (409), a value the column
cannot hold (400). Django's own validation errors (a malformed UUID in a filter) are 400.

A database connection lost while answering (the server restarted, the backend terminated, a
deadlock) is 503 with ``Retry-After``: the transaction was rolled back, and a client that sends
the request again (the rating page's outbox does, with the same ``client_id``) gets it done
once. Django drops the broken connection at the end of the request, so the retry gets a new one.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.db.models import ProtectedError, RestrictedError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from evalhub.core.errors import EvalHubError

logger = logging.getLogger(__name__)


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"


class LimitedJSONParser(JSONParser):
    """JSON bodies up to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (413 past it, the limit named),
    nested no deeper than Python's parser allows (400, not a RecursionError)."""

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: dict | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        if request is not None and limit is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise BodyTooLarge(f"The request body is {length} bytes; the limit is {limit}.")
            data = stream.read(limit + 1) if stream is not None else b""
            if len(data) > limit:
                raise BodyTooLarge(f"The request body is over the limit of {limit} bytes.")
            stream = io.BytesIO(data)
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the body is nested too deeply.") from exc


def _blocked_by(exc: ProtectedError | RestrictedError) -> str:
    kinds = Counter(str(obj._meta.verbose_name_plural) for obj in exc.args[1])
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, EvalHubError):
        body = {"detail": exc.message, "errors": exc.details}
        if exc.code:
            body["code"] = exc.code
        headers = {"Retry-After": "30"} if exc.http_status == 503 else None
        return Response(body, status=exc.http_status, headers=headers)
    if isinstance(exc, ProtectedError | RestrictedError):
        return Response({"detail": "This object is still in use and cannot be deleted "
                                   f"({_blocked_by(exc)} refer to it)."},
                        status=status.HTTP_409_CONFLICT)
    if isinstance(exc, IntegrityError):
        logger.info("integrity error answered 409: %s", exc)
        return Response({"detail": "This conflicts with existing data (a duplicate or a "
                                   "reference that is not allowed)."},
                        status=status.HTTP_409_CONFLICT)
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable, answered 503: %s", exc)
        return Response({"detail": "The database connection was lost while answering; no "
                                   "change was confirmed. Send the request again."},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"})
    if isinstance(exc, DataError):
        return Response({"detail": "A value is out of range for its field."},
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig | TooManyFieldsSent | TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response({"detail": f"The request is too large: {exc} (body limit {limit} bytes, "
                                   f"{settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields)."},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, RecursionError):
        return Response({"detail": "The request is nested too deeply."},
                        status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The URLconf's 404 (``handler404``). A path under /api/ that no route matches (an unknown
    endpoint, an id that cannot be an id) answers JSON like the API's own 404s, so a client
    never has to parse the HTML page; every other path gets the site's 404 page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found: no API endpoint or object at this path.",
                             "code": "not_found"}, status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)
