"""The OpenAPI schema documents the error answers every operation can give.

drf-spectacular documents the success answer of each operation; EvalHub's views also answer
with the errors of ``evalhub.core.api_errors`` and DRF (validation, authentication, roles,
missing objects, conflicts, size limits, throttles). Clients (and the schemathesis runs of
tests/api/test_schema_fuzzing.py) need those codes in the schema, with the body they carry. They
are added here, once, from what the operation has, instead of on each view:

- 400 (a request body, query parameters, or a write): invalid values (field errors, a bad
  filter, a bad page size), or a write the service refuses (a campaign's state, a run that
  cannot be launched);
- 401 and 403 (every operation not open to everyone): no or a bad token; a role too low;
- 404 (path parameters, or pagination): an object the caller cannot see or that does not
  exist; a page past the end;
- 409 (a write: POST, PUT, PATCH, DELETE): a conflict with stored data (a duplicate, an
  object still in use, a vote replayed with another answer);
- 413 (a request body): the body is over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, which is named;
- 415 (a request body): the body's media type is not one the operation reads (the uploads,
  ``prompt-sets/import/`` and ``import-images/``, read multipart/form-data only: JSON is 415);
- 429 (a view with a ``throttle_scope``): too many requests, ``Retry-After`` says how long;
- 503 (every operation): the database connection was lost while answering; send it again.

A code an operation documents itself (``extend_schema(responses=...)``) is kept as it is.

Descriptions come only from docstrings written on the view, action or serializer itself: a
docstring inherited from a base class (``ProjectScopedMixin``, ``ScopedModelSerializer``) is
a note for developers about the mechanism, not a description of the endpoint, and is not
published.
"""

from __future__ import annotations

import inspect
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_override
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """An error answer: ``detail`` says what is wrong; a validation error names each field
    instead (``{"field": ["message", ...]}``; a read-only field sent with a value other than
    the object's is refused there too), a domain refusal adds ``errors``: every problem, one
    sentence each, ``field: message`` for a field's, ``manifest line N: ...`` for a line's.
    Every 404 is ``{"detail": "Not found.", "code": "not_found"}`` (campaign_not_found where
    documented); every name already taken is 409 with ``code`` duplicate and the field in
    ``errors``."""

    detail = serializers.CharField(required=False, help_text="What is wrong, in words.")
    errors = serializers.JSONField(required=False, help_text=(
        "A domain refusal's problems, one sentence each, never empty: `field: message` for a "
        "field's problem (`name: ...` for a name already taken), `manifest line N: ...` for "
        "a line of an imported file."))
    code = serializers.CharField(required=False, help_text=(
        "A machine-readable reason, for the errors a client acts on: not_found (404: nothing "
        "the caller can see at this path, whatever it names); duplicate (409: the name, slug "
        "or username is already taken, the field named in `errors`); campaign_not_open (the "
        "campaign is paused or closed: nothing is served, voted, skipped or reported); "
        "campaign_not_found (404: no such campaign among the caller's projects, e.g. deleted "
        "while its rating page was open, or the caller removed from its project); "
        "vote_undone (rating: the vote was undone, so an undo has nothing left to retract "
        "and a resent vote is not recorded again)."))


ERROR_DESCRIPTIONS = {
    "400": "The request is invalid: the body names each field in error, or `detail` says why.",
    "401": "No valid credentials (API token or session).",
    "403": "The caller's role in the project does not allow this.",
    "404": "Not found, or not visible to the caller; for a list, a page past the end.",
    "409": "Conflicts with stored data: a name already taken (`code` duplicate, the field "
           "named in `errors`), an object still in use, a replayed request with a different "
           "body.",
    "413": "The request body is over the size limit, which `detail` names.",
    "415": "The body's media type is not one this operation reads (see its request body; "
           "uploads take multipart/form-data only).",
    "429": "Too many requests; `Retry-After` gives the seconds to wait.",
    "503": "The database connection was lost while answering; send the request again.",
}

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def own_doc(obj: Any) -> str:
    """The docstring written on ``obj`` itself (a class or a function), never a base's."""
    if obj is None:
        return ""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if doc else ""


class EvalHubAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema with the error answers listed above."""

    def get_description(self) -> str:
        action = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(),
                         None)
        return own_doc(getattr(action, "__func__", action)) or own_doc(self.view.__class__)

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict:
        schema = super()._map_basic_serializer(serializer, direction)
        if not get_override(serializer, "description") and not own_doc(type(serializer)):
            schema.pop("description", None)
        return schema

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str,
                      registry: Any) -> dict | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        parameters = operation.get("parameters", [])
        where = {parameter["in"] for parameter in parameters}
        names = {parameter["name"] for parameter in parameters}
        has_body = "requestBody" in operation
        codes = {"503"}
        if has_body or "query" in where or method.upper() in WRITE_METHODS:
            codes.add("400")
        if {} not in operation.get("security", [{}]):
            codes.update({"401", "403"})
        if "path" in where or "page" in names:
            codes.add("404")
        if method.upper() in WRITE_METHODS:
            codes.add("409")
        if has_body:
            codes.update({"413", "415"})
        if getattr(self.view, "throttle_scope", None):
            codes.add("429")
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        responses = operation.setdefault("responses", {})
        for code in sorted(codes):
            responses.setdefault(code, {
                "content": {"application/json": {"schema": error}},
                "description": ERROR_DESCRIPTIONS[code],
            })
        operation["responses"] = dict(sorted(responses.items()))
        return operation
