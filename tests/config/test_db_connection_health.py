"""A kept database connection that the server dropped is replaced, not used for a 500.

With ``DATABASE_CONN_MAX_AGE`` above 0 (docs/deployment.md advises it without a pooler) a web
process keeps its PostgreSQL connection from one request to the next. A connection the server
ended meanwhile (``pg_terminate_backend``, a PostgreSQL restart, a failover) used to answer the
next page with a 500 ("terminating connection due to administrator command"): Django checks a
kept connection before reusing it only with ``CONN_HEALTH_CHECKS``, which the settings turn on.

The requests go through Django's WSGI handler, as under gunicorn: the test ``Client`` leaves
out the per-request connection upkeep (``close_old_connections`` on ``request_started`` and
``request_finished``) that marks a kept connection for checking, so with it the check never
runs whatever the setting. ``CONN_MAX_AGE`` is set on the connection's own ``settings_dict``
(the dict it reads when it connects; pytest-django's ``settings`` fixture restores only
top-level settings, not a key changed inside ``DATABASES``), and the connection is closed so
that the next request connects with it.
"""

from __future__ import annotations

import time

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections
from django.test import Client, RequestFactory

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _get(path: str, cookie: str) -> int:
    """GET ``path`` through the WSGI handler with the session ``cookie``; the status code."""
    statuses: list[str] = []
    environ = RequestFactory()._base_environ(PATH_INFO=path, REQUEST_METHOD="GET",
                                             HTTP_COOKIE=cookie)
    response = WSGIHandler()(environ, lambda status, headers: statuses.append(status))
    response.close()  # request_finished, as a WSGI server sends it
    return int(statuses[0].split()[0])


def _terminate(pid: int) -> None:
    """End backend ``pid`` from another connection, and wait until it is gone."""
    admin = connections.create_connection("default")
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone() is None:
                    return
        raise AssertionError(f"backend {pid} still there after pg_terminate_backend")
    finally:
        admin.close()


def test_a_page_after_the_database_dropped_the_kept_connection_answers_200(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend needs PostgreSQL")
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True  # the setting under test
    client = Client()
    client.force_login(UserFactory())
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 600)
    connection.close()

    assert _get("/", cookie) == 200  # the home page: session, user, projects
    assert connection.connection is not None  # kept for the next request
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    _terminate(pid)

    assert _get("/", cookie) == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid  # a new connection answered
    connection.close()
