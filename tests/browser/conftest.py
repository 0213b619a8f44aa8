"""Headless Chromium (Debian's, driven by Playwright) against pytest-django's live server."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client

from tests.browser.pages import RECORD_SAID, WATCH_VIOLATIONS

# Playwright's sync API runs an event loop in this thread; Django would then refuse ORM calls
# from the test body ("async context"), although they are plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# The live server answers the page's parallel requests from several threads. On SQLite the
# default in-memory test database is one shared-cache connection, where concurrent writes fail
# with "database table is locked" (busy_timeout does not apply to shared-cache table locks).
# A file database gives each thread its own connection, with WAL and the busy timeout of
# settings.py, as in the embedded deployment. (Set at import, before the test DB is created.)
if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
        Path(tempfile.gettempdir()) / f"evalhub-browser-tests-{os.getpid()}.sqlite3")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "pw"  # tests.factories.UserFactory's password
LAPTOP = {"width": 1366, "height": 768}


def pytest_collection_modifyitems(items):
    if not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(
            reason=f"{CHROMIUM} missing: run bash scripts/ensure_system_packages.sh")
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
        yield chromium
        chromium.close()
        # While Playwright's event loop runs in this thread, Django keeps the thread's database
        # connections in asgiref's context-local storage, which it stops reading once the
        # loop is gone: a connection opened in between would stay open, out of reach, until
        # the process exits (and the test database could not be dropped). Closed here.
        connections.close_all()


@pytest.fixture(autouse=True)
def _no_input_guard(settings) -> None:
    """These tests press keys the moment a task is drawn, faster than a person can: the page's
    guard against double presses (EVALHUB_RATE_INPUT_GUARD_MS) would ignore them.
    test_double_presses.py turns it back on and checks it."""
    settings.EVALHUB_RATE_INPUT_GUARD_MS = 0


@pytest.fixture(autouse=True)
def _leaderboard_refresh_due_soon(settings) -> None:
    """A vote queues its campaign's leaderboard refresh EVALHUB_LEADERBOARD_REFRESH_SECONDS
    (30) later, a debounce no test here checks (tests/leaderboards does). The message stays in
    this process's broker until a test holds the worker (tests/integration/fixtures.py), whose
    end waits until every task has run: until then, that one (17-28 s of teardown measured).
    Due a second after the vote instead."""
    settings.EVALHUB_LEADERBOARD_REFRESH_SECONDS = 1


@dataclass
class Traffic:
    """Every request the page made, and the bodies of the API answers and HTML pages."""

    urls: list[str] = field(default_factory=list)
    bodies: list[tuple[str, str]] = field(default_factory=list)


class ServerConnections:
    """Counts the live server's open client connections, each served by a thread of its own
    (HTTP/1.1 keep-alive: one thread answers a connection's requests in turn, and closes the
    thread's database connections when the client has gone)."""

    def __init__(self, httpd) -> None:
        self.open = 0
        self.changed = threading.Condition()
        serve = httpd.process_request_thread

        def counted(request, client_address) -> None:
            with self.changed:
                self.open += 1
            try:
                serve(request, client_address)
            finally:
                with self.changed:
                    self.open -= 1
                    self.changed.notify_all()

        httpd.process_request_thread = counted

    def wait_closed(self, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.open == 0, timeout)


@pytest.fixture(scope="session")
def server_connections(live_server) -> ServerConnections:
    return ServerConnections(live_server.thread.httpd)


# The live server's URL, for the cookies :func:`login` hands the browser (set by ``context``).
_live_server_url = [""]


@pytest.fixture
def _live_server_keeps_its_database_connections() -> Iterator[None]:
    """Each of the live server's connection threads keeps one database connection for all the
    requests of its HTTP connection, and closes it when the browser closes the connection
    (ThreadedWSGIServer.close_request), as before. With CONN_MAX_AGE 0 (settings.py's default)
    every request opened its own: a connection per image, API call and page, 11 % of the live
    server's CPU time in a profile of the suite, and a PostgreSQL backend started for each.
    Production's servers keep the setting they are given (DATABASE_CONN_MAX_AGE)."""
    database = connections.settings["default"]
    kept = database["CONN_MAX_AGE"]
    database["CONN_MAX_AGE"] = None
    yield
    database["CONN_MAX_AGE"] = kept


@pytest.fixture
def context(browser, live_server, server_connections, _live_server_keeps_its_database_connections):
    _live_server_url[0] = live_server.url
    context = browser.new_context(viewport=LAPTOP, base_url=live_server.url)
    context.set_default_timeout(15_000)
    yield context
    # A route handler still running when the test ends (a fetch of an answer the closing page
    # no longer wants) would raise "Response has been disposed" into the next test's first
    # call: drop every route first and swallow what their last calls throw.
    for page in context.pages:
        page.unroute_all(behavior="ignoreErrors")
    context.unroute_all(behavior="ignoreErrors")
    context.close()
    # The test database is flushed next. A request the browser gave up on (an aborted
    # prefetch) can still be running in the live server, and a flush beside it can deadlock:
    # wait until every connection's thread has finished and closed its database connections.
    server_connections.wait_closed(timeout=15)


@pytest.fixture
def traffic(context) -> Traffic:
    seen = Traffic()
    context.on("request", lambda request: seen.urls.append(request.url))

    def keep(response):
        kind = response.headers.get("content-type", "")
        if "json" in kind or "html" in kind or "xml" in kind:
            # A body can be gone after a navigation; its URL is still checked.
            with contextlib.suppress(Exception):
                seen.bodies.append((response.url, response.text()))

    context.on("response", keep)
    return seen


def login(page, username: str, next_url: str, *, wait_until: str = "load") -> None:
    """Signed in as ``username``, then at ``next_url``: a session made by Django's own
    ``login`` (``Client.force_login``), its cookie handed to the browser. The sign-in form
    itself is walked like a person in test_signed_out.py and test_csp.py; for every other
    test it would cost a page load and a POST (0.5-0.8 s each, 100 tests).
    ``wait_until="domcontentloaded"`` when the test holds the page's images back (they are
    part of its load event: the rating page asks for its first images while it loads)."""
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    session = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": session.key, "value": session.value,
                               "url": _live_server_url[0], "httpOnly": True}])
    page.goto(next_url, wait_until=wait_until)


@pytest.fixture
def errors(context):
    """The console errors and script errors of every page of the context
    (:func:`watch_errors`)."""
    return watch_errors(context)


def watch_errors(context) -> list[str]:
    """The console errors and script errors of every page the context opens from now on (the
    browser's own /favicon.ico request aside), as they come; each page also records
    Content-Security-Policy violations in ``window.__violations`` (WATCH_VIOLATIONS) and
    what its status line says in ``window.__said`` (RECORD_SAID)."""
    context.add_init_script(WATCH_VIOLATIONS)
    context.add_init_script(RECORD_SAID)
    found: list[str] = []

    def console(message) -> None:
        if message.type == "error" and not message.location.get("url", "").endswith(
                "/favicon.ico"):
            found.append(message.text)

    def watch(page) -> None:
        page.on("console", console)
        page.on("pageerror", lambda error: found.append(str(error)))

    context.on("page", watch)
    return found
