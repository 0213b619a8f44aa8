"""Filters on more values than PostgreSQL binds in one statement."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection, transaction

from evalhub.core.bounded import IN_CHUNK, chunked, in_chunks
from evalhub.projects.models import Project
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def test_chunked_keeps_order_and_sizes():
    assert list(chunked(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []
    assert list(chunked(iter(range(4)), 2)) == [[0, 1], [2, 3]]


def test_seventy_thousand_ids_are_filtered_in_chunks_where_one_list_fails():
    projects = [ProjectFactory() for _ in range(3)]
    wanted = [p.pk for p in projects[:2]] + list(range(10**9, 10**9 + 70_000))
    if connection.vendor == "postgresql":
        # The limit this module exists for, on the suite's PostgreSQL.
        with pytest.raises(OperationalError, match="65535"), transaction.atomic():
            list(Project.objects.filter(pk__in=wanted))
    found = sorted(pk for chunk in in_chunks(Project.objects.all(), "pk", wanted)
                   for pk in chunk.values_list("pk", flat=True))
    assert found == sorted(p.pk for p in projects[:2])
    assert len(list(in_chunks(Project.objects.all(), "pk", wanted))) == -(-len(wanted) // IN_CHUNK)
