"""Filters on long lists of values, kept under the database's bound-parameter limit.

A filter ``field__in=<list>`` binds one parameter per value. PostgreSQL takes at most 65,535
in one statement (psycopg's server-side binding, on by default: settings.py), SQLite 32,766:
beyond, the query fails ("number of parameters must be between 0 and 65535"). Runs and
reference sets of FID's usual 50,000 images and more, and campaigns of that many tasks, pass
it. Where the values come from the database, a subquery (``field__in=<QuerySet>``) binds none
and is the better fix; where they are a Python list, the query runs in chunks of
:data:`IN_CHUNK` values (:func:`in_chunks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

from django.db.models import Model, QuerySet

T = TypeVar("T")
M = TypeVar("M", bound=Model)

#: Values per query: well under both limits, and few round trips (10 for 100,000 values).
IN_CHUNK = 10_000


def chunked(values: Iterable[T], size: int | None = None) -> Iterator[list[T]]:
    """``values`` in lists of at most ``size`` (default :data:`IN_CHUNK`, read at each call,
    so a test can make it small), in order."""
    size = size or IN_CHUNK
    it = iter(values)
    while chunk := list(islice(it, size)):
        yield chunk


def in_chunks(queryset: QuerySet[M], field: str, values: Iterable[object],
              size: int | None = None) -> Iterator[QuerySet[M]]:
    """``queryset`` filtered on ``field__in`` each chunk of ``values`` in turn: one query (or
    update, or delete) per chunk, each under the parameter limit. Ordering holds within a chunk
    only; a value repeated across chunks is matched in each."""
    for chunk in chunked(values, size):
        yield queryset.filter(**{f"{field}__in": chunk})
