"""Errors of the API's serializers and of the services, shown next to the form field they are
about (never a 500, never a second copy of the rule that produced them)."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from evalhub.core.errors import EvalHubError, InvalidFields
from evalhub.projects.references import ForeignReference


def _messages(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [f"{key}: {msg}" for key, inner in value.items() for msg in _messages(inner)]
    if isinstance(value, list | tuple):
        return [msg for item in value for msg in _messages(item)]
    return [str(value)]


def add_serializer_errors(form: forms.Form, errors: dict[str, Any]) -> None:
    """A DRF serializer's ``errors`` (field -> messages) onto the form's fields of that name;
    a uniqueness refusal that names ``name`` goes next to the name; errors of fields the form
    does not show go to the form as a whole."""
    for name, value in errors.items():
        field = name if name in form.fields else None
        if name == "non_field_errors" and "name" in form.fields and re.search(
                r"\bname\b", str(value)):
            field = "name"  # "This model already has a checkpoint with this name."
        for message in _messages(value):
            if field is None and name != "non_field_errors":
                message = f"{name}: {message}"
            form.add_error(field, message)


def add_service_error(form: forms.Form, exc: EvalHubError, *, field: str | None,
                      about: dict[str, str] | None = None) -> None:
    """A service's refusal next to the field it is about.

    ``field`` is where the view expects the call's errors (the uploaded file for an import).
    A reference outside the project names its field (``ForeignReference.details``); other
    refusals are placed by what their message is about: ``about`` maps a lower-case phrase to a
    field, first match wins, and a name already used in the project ("... named 'x'") goes to
    ``name``. Every line of ``details`` (a bad line of a prompt file, a bad file in a zip) is
    listed under the same field.

    An :class:`InvalidFields` (a name already taken: :class:`NameTaken`) says which field each
    problem is about: each goes under its own field, once (its ``details`` repeat the same
    messages prefixed by the field, for the API), as ``attach_service_error`` places them on
    the campaign pages; a field this form does not show keeps its name in front.
    """
    if isinstance(exc, ForeignReference) and exc.details and exc.details[0] in form.fields:
        form.add_error(exc.details[0], exc.message)
        return
    if isinstance(exc, InvalidFields):
        fallback = field if field in form.fields else None
        for name, problems in exc.fields.items():
            for problem in problems:
                if name in form.fields:
                    form.add_error(name, problem)
                else:
                    form.add_error(fallback, f"{name}: {problem}")
        return
    text = exc.message.lower()
    for phrase, candidate in {" named ": "name", **(about or {})}.items():
        if phrase in text and candidate in form.fields:
            field = candidate
            break
    target = field if field in form.fields else None
    for message in [exc.message, *exc.details]:
        form.add_error(target, message)
