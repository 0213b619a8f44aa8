"""Log levels: a worker follows ``LOG_LEVEL``, and answers that are the caller's problem or a
probe's verdict (bad Host, too many form fields, ``/readyz`` not ready) are WARNING lines
without a traceback, not errors."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest
from django.urls import reverse

from evalhub.core.health import forget_readiness
from evalhub.core.logging import logging_config
from evalhub.core.receivers import configure_worker_logging


@pytest.fixture
def restore_logging(settings):
    """Put back the logging set-up (and pytest's own handlers) a test replaced."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    yield
    logging.config.dictConfig(settings.LOGGING)
    logging.captureWarnings(False)
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


@pytest.fixture
def console(settings, restore_logging):
    """The settings' JSON logging set-up at ``INFO`` as a deployment runs it, its console
    handler writing into a buffer: returns the JSON lines written so far."""
    settings.LOGGING = logging_config(json_lines=True, level="INFO")
    logging.config.dictConfig(settings.LOGGING)
    stream = io.StringIO()
    (handler,) = logging.getLogger().handlers
    handler.setStream(stream)
    return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(("log_level", "celery_level", "expected"), [
    ("INFO", logging.WARNING, logging.INFO),   # Celery's default --loglevel: LOG_LEVEL applies
    ("INFO", logging.DEBUG, logging.DEBUG),    # --loglevel DEBUG still shows more
    ("ERROR", logging.INFO, logging.INFO),     # --loglevel INFO shows more than LOG_LEVEL
    ("DEBUG", None, logging.DEBUG),
])
def test_a_worker_logs_at_the_more_verbose_of_log_level_and_its_loglevel(
        settings, restore_logging, log_level, celery_level, expected):
    settings.LOGGING = logging_config(json_lines=True, level=log_level)
    configure_worker_logging(loglevel=celery_level)
    assert logging.getLogger().level == expected


def test_a_worker_without_loglevel_writes_its_info_start_line_under_log_level_info(
        settings, restore_logging):
    settings.LOGGING = logging_config(json_lines=True, level="INFO")
    configure_worker_logging(loglevel=logging.WARNING)  # what `celery worker` passes by default
    assert logging.getLogger("evalhub.worker").isEnabledFor(logging.INFO)


@pytest.mark.django_db
def test_a_disallowed_host_is_one_warning_line_without_a_traceback(client, console):
    response = client.get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    (line,) = [line for line in console() if line["logger"].startswith("django.security")]
    assert (line["logger"], line["level"]) == ("django.security.DisallowedHost", "WARNING")
    assert "evil.example" in line["message"]
    assert "exc" not in line


@pytest.mark.django_db
def test_too_many_form_fields_is_one_warning_line_without_a_traceback(client, console):
    fields = {f"f{i}": "x" for i in range(1500)}
    response = client.post(reverse("login"), fields)
    assert response.status_code == 400
    (line,) = [line for line in console() if line["logger"].startswith("django.security")]
    assert (line["logger"], line["level"]) == ("django.security.TooManyFieldsSent", "WARNING")
    assert "exc" not in line


@pytest.mark.django_db
def test_a_failing_readiness_probe_is_a_warning_not_a_server_error(client, console, settings,
                                                                   broker):
    settings.EVALHUB_READYZ_CACHE_SECONDS = 0
    settings.EVALHUB_READYZ_TIMEOUT_MS = 300
    settings.EVALHUB_READYZ_QUEUES = None  # every routed queue; none has a worker here
    forget_readiness()
    try:
        response = client.get("/readyz")  # no worker consumes the queues here
    finally:
        forget_readiness()
    assert response.status_code == 503
    (line,) = [line for line in console() if line["logger"] == "django.request"]
    assert line["level"] == "WARNING"
    assert "/readyz" in line["message"] and "exc" not in line


def test_a_server_error_elsewhere_stays_an_error_with_its_traceback(console):
    logger = logging.getLogger("django.request")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.error("Internal Server Error: /x", exc_info=True, extra={"status_code": 500})
    logger.error("Service Unavailable: /api/x", extra={"status_code": 503})
    lines = [line for line in console() if line["logger"] == "django.request"]
    assert [line["level"] for line in lines] == ["ERROR", "ERROR"]
    assert lines[0]["exc"].endswith("RuntimeError: boom")
