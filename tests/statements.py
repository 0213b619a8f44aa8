"""What the database was asked: for tests of how many values a path binds (a statement binds
at most 65,535 on PostgreSQL: evalhub/core/bounded.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def statements() -> Iterator[list[tuple[str, tuple]]]:
    """Every statement run on the default connection inside the block, as ``(sql, params)``,
    in order; one entry per row of an ``executemany``."""
    seen: list[tuple[str, tuple]] = []

    def record(execute, sql, params, many, context):
        for row in (params or []) if many else [params]:
            seen.append((sql, tuple(row or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield seen


def widest(seen: list[tuple[str, tuple]]) -> int:
    """The most values one of ``seen``'s statements bound."""
    return max((len(params) for _, params in seen), default=0)
