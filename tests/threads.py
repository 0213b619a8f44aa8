"""Work run in real threads, each with its own Django database connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, connections


def race(functions: Sequence[Callable[[], Any]], timeout_s: float = 30) -> list[Any]:
    """Run the functions at the same moment in threads; return their results, or the exception
    each raised (the outcome under test may be one). Each thread closes its connections."""
    barrier = threading.Barrier(len(functions))
    results: list[Any] = [None] * len(functions)

    def run(index: int, fn: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = fn()
        except Exception as exc:  # the outcome under test may be an exception
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
    return results


def until_a_backend_waits_for_a_lock(what: str, timeout_s: float = 20) -> None:
    """Return once a session of the test database waits for a row lock (PostgreSQL's
    ``pg_stat_activity``): the step of a race that must block has reached its lock. ``what``
    names that step for the failure message."""
    deadline = time.monotonic() + timeout_s
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError(f"{what} never waited for a lock")
