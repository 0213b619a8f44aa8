"""Shared helpers for manage.py commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

from django.core.management.base import CommandError
from django.db.models import Model

from evalhub.core.errors import EvalHubError
from evalhub.projects.models import Project


@contextmanager
def domain_errors_as_command_errors() -> Iterator[None]:
    try:
        yield
    except EvalHubError as exc:
        raise CommandError(str(exc)) from exc


def reports_domain_errors(handle: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``Command.handle`` so bad input prints its message, not a traceback."""

    @wraps(handle)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with domain_errors_as_command_errors():
            return handle(*args, **kwargs)

    return wrapper


def get_project(slug: str) -> Project:
    try:
        return Project.objects.get(slug=slug)
    except Project.DoesNotExist as exc:
        raise CommandError(f"No project with slug {slug!r}.") from exc


def get_by_name(model: type[Model], *, what: str, **lookup: Any) -> Any:
    try:
        return model.objects.get(**lookup)
    except model.DoesNotExist as exc:
        shown = ", ".join(f"{k}={v}" for k, v in lookup.items())
        raise CommandError(f"No {what} with {shown}.") from exc


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
    return parsed
