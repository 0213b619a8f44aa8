"""Domain errors. Services raise these; the API turns them into 400 responses with details."""

from __future__ import annotations


class EvalHubError(Exception):
    """Base class for errors caused by the user's input, never by a bug.

    ``http_status`` is the answer the API gives (400 unless a subclass says otherwise);
    ``code``, when set, is a machine-readable reason the API adds for clients that act on it.
    """

    http_status = 400
    code: str | None = None

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def __str__(self) -> str:
        if not self.details:
            return self.message
        shown = "\n  - ".join(self.details[:50])
        more = f"\n  ... and {len(self.details) - 50} more" if len(self.details) > 50 else ""
        return f"{self.message}\n  - {shown}{more}"


class InvalidFields(EvalHubError):
    """Several inputs refused at once, each message under the field it is about, so a form
    shows every problem next to its field in one answer (the API lists them in ``errors``)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        messages = [message for problems in fields.values() for message in problems]
        super().__init__(" ".join(messages),
                         details=[f"{name}: {message}" for name, problems in fields.items()
                                  for message in problems])
        self.fields = fields


class ImportRejected(EvalHubError):
    """An import found bad input; nothing was stored."""


class NameTaken(InvalidFields):
    """A name another object of the project already has: 409 ``duplicate``, the field in
    ``errors`` (``name: ...``), as the API answers every name already taken (its unique
    validators included: evalhub/core/api_errors.py); a form shows it at the field."""

    http_status = 409
    code = "duplicate"

    def __init__(self, field: str, message: str) -> None:
        super().__init__({field: [message]})
