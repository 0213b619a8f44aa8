"""Map errors to HTTP answers so views need no try/except, and no input produces a 500.

Domain errors carry their status (400 unless they say otherwise). Database refusals that an
input can cause become client errors: a delete blocked by objects that still use the object
(409, naming how many of which kind), a conflict with existing rows (409), a value the column
cannot hold (400). Django's own validation errors (a malformed UUID in a filter) are 400.

One shape per kind of answer (docs/security.md, "Errors are answers"): every 404 is
:data:`NOT_FOUND` (only a domain error's own code, ``campaign_not_found``, differs); every
name already taken is 409 ``duplicate`` with the field in ``errors``; a domain error's
``errors`` lists every problem, never empty, a field's as ``field: message``.

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
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, ParseError, ValidationError
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


#: Every 404 of the API but those that carry a more specific code (``campaign_not_found``):
#: an unused id, another project's object, an id that cannot be one, a page past the end and
#: a path that no route matches answer alike, and never name a model class (Django's
#: ``get_object_or_404`` said "No GenerationRun matches the given query.").
NOT_FOUND = {"detail": "Not found.", "code": "not_found"}


def not_found_response() -> Response:
    return Response(dict(NOT_FOUND), status=status.HTTP_404_NOT_FOUND)


def _duplicate(detail: Any) -> bool:
    """Whether a validation error is only "this name is taken" (DRF's ``unique`` code, given
    by its unique validators and by the serializers that check a name the service would
    refuse), under one field."""
    if not isinstance(detail, dict) or len(detail) != 1:
        return False
    (problems,) = detail.values()
    return (isinstance(problems, list) and bool(problems)
            and all(getattr(problem, "code", None) == "unique" for problem in problems))


def _duplicate_response(detail: dict) -> Response:
    """409 for a name (slug, username) already taken: ``detail`` says so, ``errors`` lists it
    as ``field: message``, ``code`` is ``duplicate`` (docs/security.md, "Errors are
    answers")."""
    ((field, problems),) = detail.items()
    messages = [str(problem) for problem in problems]
    return Response({"detail": " ".join(messages), "code": "duplicate",
                     "errors": [f"{field}: {message}" for message in messages]},
                    status=status.HTTP_409_CONFLICT)


def _problems(exc: EvalHubError) -> list[str]:
    """A domain error's ``errors``: each problem a sentence, ``field: message`` for a field's
    (``manifest line N: ...`` for a line's); never empty, so a client reads one list whether
    there was one problem or several. An entry that is only a field name (``["annotator"]``)
    is the error's own message, which names it."""
    if not exc.details:
        return [exc.message]
    return [exc.message if detail.isidentifier() and exc.message.startswith(f"{detail}:")
            else detail for detail in exc.details]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, EvalHubError):
        body = {"detail": exc.message, "errors": _problems(exc)}
        if exc.code:
            body["code"] = exc.code
        headers = {"Retry-After": "30"} if exc.http_status == 503 else None
        return Response(body, status=exc.http_status, headers=headers)
    if isinstance(exc, Http404 | NotFound):
        return not_found_response()
    if isinstance(exc, ValidationError) and _duplicate(exc.detail):
        return _duplicate_response(exc.detail)
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
        return JsonResponse(NOT_FOUND, status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)
