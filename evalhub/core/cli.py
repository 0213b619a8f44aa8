"""Shared helpers for manage.py commands."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

from django.core.management.base import CommandError
from django.db import DataError
from django.db.models import Model

from evalhub.core.errors import EvalHubError, InvalidFields
from evalhub.core.limits import (
    MAX_TEXT_CHARS,
    NAME_FIELDS,
    json_problem,
    name_text,
    text_problem,
)
from evalhub.projects.models import Project


@contextmanager
def domain_errors_as_command_errors() -> Iterator[None]:
    """Bad input becomes a ``CommandError``, which manage.py prints as one line (exit 1)
    instead of a traceback: domain errors with their message, a file that cannot be read or
    written with its name and the system's reason, and a value the database refuses.

    An :class:`InvalidFields` (a name already taken, several inputs refused) prints its
    message alone: its ``details`` are the same messages again under their form field
    (``- name: ...``, for the API's ``errors``), which a terminal would show twice."""
    try:
        yield
    except InvalidFields as exc:
        raise CommandError(exc.message) from exc
    except EvalHubError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        if exc.filename is None:
            raise
        raise CommandError(f"{exc.filename}: {exc.strerror or exc}.") from exc
    except DataError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "refused"
        raise CommandError(f"A value does not fit its database field: {first_line}.") from exc


def reports_domain_errors(handle: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``Command.handle`` so bad input prints its message, not a traceback."""

    @wraps(handle)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with domain_errors_as_command_errors():
            return handle(*args, **kwargs)

    return wrapper


def _text_refusal(value: str) -> str | None:
    """Why an argument cannot be text EvalHub stores, in words without the value (which may
    not be printable): a byte that is not UTF-8 reaches Python as a lone surrogate
    (``caf\\xe9`` is ``"caf\\udce9"``), which no database, file or UTF-8 terminal takes."""
    problem = text_problem(value)
    if problem is None:
        return None
    return ("contains a NUL character" if "\x00" in value
            else "not valid UTF-8 text (check the terminal's or the script's encoding)")


def text_argument(max_length: int, *, name: bool = False) -> Callable[[str], str]:
    """An argparse ``type`` for text that is stored or looked up, as the API takes it: leading
    and trailing spaces trimmed (DRF's ``trim_whitespace``), at most ``max_length`` characters
    (the model column's length), valid UTF-8 and no NUL character (PostgreSQL cannot hold
    one). With ``name``, the name rule too (:func:`evalhub.core.limits.name_text`: NFC, no
    control or format character, not empty). argparse names the option in its refusal:
    ``argument --name: longer than 200 characters``."""

    def text(value: str) -> str:
        refusal = _text_refusal(value)
        if refusal:
            raise argparse.ArgumentTypeError(refusal)
        value = value.strip()
        if name:
            if not value:
                raise argparse.ArgumentTypeError("a name cannot be empty")
            try:
                value = name_text(value)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        if len(value) > max_length:
            raise argparse.ArgumentTypeError(f"longer than {max_length} characters")
        return value

    return text


def model_text(model: type[Model], field: str) -> Callable[[str], str]:
    """:func:`text_argument` with the length of ``model.field``, and the name rule when the
    field is a name."""
    return text_argument(model._meta.get_field(field).max_length or MAX_TEXT_CHARS,
                         name=field in NAME_FIELDS)


def seconds(value: str) -> float:
    """An argparse type for a duration in seconds: 0 or more (0: look once; ``--timeout -1``
    was taken, queued the work, then gave up)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r}: give a number of seconds, 0 or more")
    return number


def wait_until(done: Callable[[], bool], *, timeout: float, poll: float = 1.0) -> bool:
    """Call ``done`` every ``poll`` seconds until it is true (True) or ``timeout`` seconds
    have passed (False): the ``--wait`` of the commands that queue work for the workers."""
    deadline = time.monotonic() + timeout
    while True:
        if done():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def get_project(slug: str) -> Project:
    refusal = _text_refusal(slug)
    if refusal:
        raise CommandError(f"--project: {refusal}.")
    slug = slug.strip()
    try:
        return Project.objects.get(slug=slug)
    except Project.DoesNotExist as exc:
        raise CommandError(f"No project with slug {slug!r}.") from exc


def get_by_name(model: type[Model], *, what: str, **lookup: Any) -> Any:
    try:
        return model.objects.get(**lookup)
    except model.DoesNotExist as exc:
        # "No checkpoint named 'nope' (model 'sdxl', project 'Demo')", not ORM lookups.
        def label(key: str) -> str:
            parts = key.split("__")
            return (parts[:-1] if len(parts) > 1 and parts[-1] in ("name", "slug")
                    else parts)[-1].replace("_", " ")

        named = f" named {lookup['name']!r}" if "name" in lookup else ""
        scope = ", ".join(f"{label(k)} {str(v)!r}" for k, v in lookup.items() if k != "name")
        raise CommandError(f"No {what}{named}" + (f" ({scope})" if scope else "") + ".") from exc


def parse_key_values(pairs: list[str], *, flag: str) -> dict[str, Any]:
    """``["steps=30", "scheduler=DDIM"]`` -> ``{"steps": 30, "scheduler": "DDIM"}``.

    Values are read as JSON when they parse (numbers, booleans, lists), else kept as text.
    """
    import json

    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"{flag} {pair!r}: expected KEY=VALUE")
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
        # Stored as JSON: an undecodable byte (a lone surrogate) or a NUL cannot be.
        problem = json_problem({key: parsed[key]})
        if problem:
            raise CommandError(f"{flag} {key.encode(errors='backslashreplace').decode()}: "
                               f"{problem}")
    return parsed
