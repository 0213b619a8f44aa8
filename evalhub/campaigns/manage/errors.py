"""Put a service's refusal next to the form field it is about.

The pages validate nothing the services validate: they call the service and show its message.
A refusal names its field in ``details`` (``ForeignReference``), or its message names the
value (``hints``: a piece of the message -> the field); anything else is a form-level error.
"""

from __future__ import annotations

from collections.abc import Mapping

from django import forms

from evalhub.core.errors import EvalHubError, InvalidFields


def attach_service_error(form: forms.Form, error: EvalHubError,
                         hints: Mapping[str, str] | None = None) -> None:
    """Add ``error``'s message to ``form``, on the field it is about when that is known;
    each of :class:`InvalidFields`' problems under its own field."""
    if isinstance(error, InvalidFields):
        for name, problems in error.fields.items():
            for problem in problems:
                form.add_error(name if name in form.fields else None, problem)
        return
    message = error.message
    for name in error.details:
        if name in form.fields:
            form.add_error(name, message)
            return
    lowered = message.lower()
    for piece, name in (hints or {}).items():
        if piece.lower() in lowered and name in form.fields:
            form.add_error(name, message)
            return
    form.add_error(None, message)
