"""Typed access to environment variables; settings read everything through here."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

T = TypeVar("T", int, float)

BASE_DIR = Path(__file__).resolve().parent.parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ImproperlyConfiguredEnv(RuntimeError):
    """Raised at start-up when the environment describes an unsafe or invalid deployment."""


def _one_line_configuration_errors(kind: type[BaseException], exc: BaseException,
                                   traceback: object, *, then: Callable = sys.excepthook) -> None:
    # A setting the environment got wrong is the operator's to fix, and every process reads
    # the settings at start (manage.py, the Celery worker, gunicorn's master): the message names
    # the variable and what it accepts; a traceback through Django's start-up only hides it.
    if isinstance(exc, ImproperlyConfiguredEnv):
        sys.stderr.write(f"EvalHub configuration error: {exc}\n")
    else:
        then(kind, exc, traceback)


sys.excepthook = _one_line_configuration_errors


def exit_for_configuration_error(exc: ImproperlyConfiguredEnv) -> NoReturn:
    """The one line, then exit status 1: for the entry points whose loaders catch an exception
    before it reaches ``sys.excepthook`` and print a traceback instead (Celery's ``-A`` app
    import, gunicorn's app import). Neither catches SystemExit."""
    sys.stderr.write(f"EvalHub configuration error: {exc}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfiguredEnv(f"{name}={value!r} is not a boolean (use 1/0, true/false)")


def _env_number(name: str, default: T, parse: Callable[[str], T], noun: str) -> T:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return parse(value)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name}={value!r} is not {noun}") from exc


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer")


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


# DRF reads a period by its first letter only, so "60/month" would mean 60 a minute: the words
# of the four periods it knows are accepted, anything else refused.
RATE_PERIODS = (
    "s", "sec", "second", "seconds", "m", "min", "minute", "minutes",
    "h", "hr", "hour", "hours", "d", "day", "days",
)


def env_rate(name: str, default: str) -> str | None:
    """A request rate as DRF writes it (``60/min``: a count, then a period DRF reads by its
    first letter), or None when set empty (no limit). Checked here: DRF reads it only on the
    first throttled request, where a typo answered every rating request with a 500."""
    value = env_str(name, default)
    if not value:
        return None
    count, _, period = value.partition("/")
    period = period.strip().lower()
    # isascii: str.isdigit() also accepts digits int() refuses ("²").
    if not (count.strip().isascii() and count.strip().isdigit() and period in RATE_PERIODS):
        raise ImproperlyConfiguredEnv(
            f"{name}={value!r} is not a rate: write N/sec, N/min, N/hour or N/day (or the "
            "words second, minute, hour, day; or leave it empty for no limit)")
    return f"{int(count)}/{period}"


def env_positive_int(name: str, default: int) -> int:
    value = env_int(name, default)
    if value < 1:
        raise ImproperlyConfiguredEnv(f"{name}={value} must be at least 1")
    return value


def env_count(name: str, default: int) -> int:
    """An integer that may be 0 but not negative (a count of things)."""
    value = env_int(name, default)
    if value < 0:
        raise ImproperlyConfiguredEnv(f"{name}={value} must be 0 or more")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def env_log_level(name: str, default: str) -> str:
    """A logging level name, any case (``debug`` is ``DEBUG``); logging's own refusal came as
    a traceback from deep inside dictConfig."""
    value = (env_str(name) or default).strip().upper()
    if value not in LOG_LEVELS:
        raise ImproperlyConfiguredEnv(
            f"{name}={os.environ.get(name)!r} is not a log level: use one of "
            f"{', '.join(LOG_LEVELS)}")
    return value


def env_address(name: str) -> tuple[str, int] | None:
    """``host:port`` (``:port`` or ``port`` alone bind to loopback), or None when unset or
    empty."""
    value = (env_str(name) or "").strip()
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ImproperlyConfiguredEnv(
            f"{name}={value!r} is not an address: write host:port, e.g. 0.0.0.0:9808")
    return host or "127.0.0.1", int(port)


def env_database(name: str, default: str, *, conn_max_age: int) -> dict:
    """Django's ``DATABASES`` entry for the URL in ``name``, or a one-line refusal that names
    the scheme (never the password) and the ones accepted."""
    import dj_database_url

    url = env_str(name) or default
    try:
        return dj_database_url.parse(url, conn_max_age=conn_max_age)
    except (ValueError, KeyError) as exc:
        port = _unreadable_port(url)
        if port is not None:
            raise ImproperlyConfiguredEnv(
                f"{name}'s port {port!r} is not a number: write "
                "postgres://user:password@host:5432/name") from exc
        raise ImproperlyConfiguredEnv(
            f"{name} is not a database URL (scheme {_scheme(url)!r}): write "
            "postgres://user:password@host:5432/name or sqlite:////absolute/path.sqlite3"
        ) from exc


def _scheme(url: str) -> str:
    return url.partition("://")[0] if "://" in url else "(none)"


# What redis-py's ``from_url`` (Django's RedisCache) reads.
CACHE_URL_SCHEMES = ("redis", "rediss", "unix")


def env_cache_url(name: str) -> str | None:
    """A Redis URL for Django's RedisCache (several, comma- or semicolon-separated, as Django
    reads LOCATION), or None when unset or empty. Checked here: a malformed one started fine
    and failed only at the first cache call (sign-in, rating) and in /readyz."""
    value = (env_str(name) or "").strip()
    if not value:
        return None
    for url in re.split("[;,]", value):
        url = url.strip()
        if _scheme(url) not in CACHE_URL_SCHEMES or not url.partition("://")[2]:
            raise ImproperlyConfiguredEnv(
                f"{name} is not a Redis URL (scheme {_scheme(url)!r}): write "
                "redis://host:6379/1 (rediss:// for TLS, unix:///path/to/redis.sock)")
    return value


def env_broker_url(name: str, default: str) -> str:
    """A Celery broker URL whose transport kombu knows (failover URLs separated by ``;``).
    Checked here: an unknown one was a traceback (``KeyError: No such transport``) in the
    worker and an error at the first task sent from the web."""
    from kombu.transport import TRANSPORT_ALIASES

    value = (env_str(name) or "").strip() or default
    for url in value.split(";"):
        url = url.strip()
        # kombu reads "transport+scheme://" (sqla+postgresql://) by its transport.
        transport = _scheme(url).partition("+")[0]
        if transport not in TRANSPORT_ALIASES:
            raise ImproperlyConfiguredEnv(
                f"{name} is not a broker URL (scheme {_scheme(url)!r}): write "
                "redis://host:6379/0 (or another kombu transport: rediss, sentinel, amqp, "
                "filesystem, sqs, ...)")
    return value


def _unreadable_port(url: str) -> str | None:
    """The port written in ``url`` when it is not a number, else None (the password is never
    part of it: it is what follows the host's last colon)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL at all (an unclosed IPv6 bracket): no port to blame
        return None
    try:
        parts.port  # noqa: B018 - urllib checks the port only when it is read
    except ValueError:
        return parts.netloc.rpartition("@")[2].rpartition(":")[2]
    return None


def env_folder(name: str) -> Path | None:
    """A folder that must exist and be writable (None when unset or empty)."""
    value = (env_str(name) or "").strip()
    if not value:
        return None
    path = Path(value)
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise ImproperlyConfiguredEnv(f"{name}={value!r} is not a writable folder: create it "
                                      "(empty, shared by every process of this host) first")
    return path


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def var_dir() -> Path:
    """Directory for the embedded default's state (SQLite file, broker folders, media)."""
    return Path(env_str("EVALHUB_VAR_DIR", str(BASE_DIR / "var")))
