"""Structured logs: a request id on every web log line, a task id on every worker log line.

Two context variables carry the ids: :class:`RequestIdMiddleware` sets ``request_id`` for the
duration of a request (from a well-formed ``X-Request-ID`` header, otherwise a new one, echoed
in the response's ``X-Request-ID``), and the Celery receivers (``evalhub.core.receivers``) set
``task_id``/``task_name`` for the duration of a task, together with the ``request_id`` of the
request that sent the task when it carried one. :class:`ContextFilter` copies them onto every
log record, so both formatters can show them; :class:`JsonFormatter` writes one JSON object per
line (``EVALHUB_LOG_JSON=1``; plain text stays the default in development).

Context variables rather than thread-locals: gunicorn's ``gthread`` workers serve requests on
threads, Celery's prefork children run one task at a time, and both give each its own context.
"""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"

request_id_var: ContextVar[str | None] = ContextVar("evalhub_request_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("evalhub_task_id", default=None)
task_name_var: ContextVar[str | None] = ContextVar("evalhub_task_name", default=None)

# A client's id is kept only when it is short and plain: it is written into every log line and
# echoed in a header, so anything else (newlines, quotes, kilobytes) is replaced by our own id.
_ACCEPTED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# Attributes every LogRecord has; anything else on a record was passed with ``extra=`` and is
# written as a field of its own.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "task_id", "task_name"}


def new_request_id() -> str:
    """A fresh request id: 32 hex digits (a random UUID)."""
    return uuid.uuid4().hex


def accepted_request_id(value: str | None) -> str:
    """The client's ``X-Request-ID`` when it is 1-128 characters of ``[A-Za-z0-9._:-]``,
    otherwise a new id."""
    if value and _ACCEPTED_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


class RequestIdMiddleware:
    """Give each request an id, visible to every log line written while it is served.

    Put it first in ``MIDDLEWARE`` so that the other middlewares' log lines carry the id too.
    The id is also ``request.request_id`` and the response's ``X-Request-ID`` header.

    The id stays set until ``request_finished`` (the server closing the response), not just
    until this middleware returns: Django logs 4xx and 5xx answers (``django.request``) after
    the whole middleware chain, and those lines need the id most.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        request_finished.connect(clear_request_id, dispatch_uid="core.clear_request_id")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = accepted_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        request_id_var.set(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


def clear_request_id(**kwargs: object) -> None:
    """``request_finished``: the thread's next log lines belong to no request."""
    request_id_var.set(None)


class ContextFilter(logging.Filter):
    """Copy the current request id, task id and task name onto every record (``None`` when
    unset), so ``%(request_id)s`` works in a plain format and the JSON formatter finds them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.task_id = task_id_var.get()
        record.task_name = task_name_var.get()
        return True


# Views whose 503 is their verdict (not ready), not a failure of the server.
PROBE_VIEWS = frozenset({"healthz", "readyz"})


def _answer_of_a_probe(record: logging.LogRecord) -> bool:
    match = getattr(getattr(record, "request", None), "resolver_match", None)
    return getattr(match, "url_name", None) in PROBE_VIEWS


class ClientErrorWithoutTraceback(logging.Filter):
    """Django's records of answers that are no failure of the server: WARNING, no traceback.

    Django logs a refused request (``PermissionDenied`` -> 403, ``Http404``, a bad request) on
    ``django.request``, and a suspicious one (a disallowed ``Host``, too many form fields:
    400) on ``django.security.<exception>`` at ERROR, with the exception attached, so each one
    printed a traceback although nothing failed: the caller was told no. The same holds for a
    probe's 503 (``/readyz`` not ready: :data:`PROBE_VIEWS`), which ``django.request`` logged
    as a server error. Those records keep their line, with the exception's text at its end,
    at WARNING at most (dropped when the logger's level is above WARNING); other 5xx records
    keep their level and traceback.

    Attached to the ``django.request`` logger and to the console handler (a logger's filter
    does not see its children's records: the ``django.security.*`` loggers are named after
    each exception class).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "django.request" and not record.name.startswith("django.security."):
            return True
        status = getattr(record, "status_code", None)
        if not isinstance(status, int) or not (
                status < 500 or (status == 503 and _answer_of_a_probe(record))):
            return True
        if record.exc_info:
            exception = record.exc_info[1]
            if exception is not None and str(exception) and str(exception) != record.msg:
                record.msg = f"{record.msg} ({str(exception).replace('%', '%%')})"
            record.exc_info = None
            record.exc_text = None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return logging.getLogger(record.name).isEnabledFor(logging.WARNING)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line.

    Keys: ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``,
    ``process``, ``thread_name``; ``request_id``, ``task_id``, ``task_name`` when set; ``exc``
    (the formatted traceback) when the record carries an exception; and every ``extra=`` field
    (values JSON cannot encode are written with ``str``).
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread_name": record.threadName,
        }
        for key in ("request_id", "task_id", "task_name"):
            value = getattr(record, key, None)
            if value is None:  # a handler without ContextFilter: read the context directly
                value = {"request_id": request_id_var, "task_id": task_id_var,
                         "task_name": task_name_var}[key].get()
            if value is not None:
                line[key] = value
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = value
        if record.exc_info:
            line["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


def logging_config(*, json_lines: bool, level: str) -> dict[str, object]:
    """The ``LOGGING`` dict of the settings: one console handler on the root logger.

    Plain text (``time LEVEL logger: message``, the format developers know) unless
    ``json_lines``; both go through :class:`ContextFilter`, so a custom plain format may use
    ``%(request_id)s`` and ``%(task_id)s``.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "evalhub.core.logging.ContextFilter"},
            "client_error": {"()": "evalhub.core.logging.ClientErrorWithoutTraceback"},
        },
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {"()": "evalhub.core.logging.JsonFormatter"},
        },
        "handlers": {"console": {"class": "logging.StreamHandler",
                                 "formatter": "json" if json_lines else "plain",
                                 "filters": ["context", "client_error"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own console handler (DEBUG only) printed every django record a second
            # time next to the root's: the root's handler is the one output.
            "django": {"handlers": [], "propagate": True},
            "django.request": {"filters": ["client_error"]},
        },
    }
