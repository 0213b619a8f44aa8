"""Paging: the API's page numbers, and keyset pages of primary keys for commands that walk a
whole table."""

from collections.abc import Iterator

from django.db.models import QuerySet
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


def pk_pages(ids: QuerySet, size: int) -> Iterator[list[int]]:
    """``ids`` (primary keys, ``values_list("pk", flat=True)`` ordered by pk) in lists of at
    most ``size``, each read by ``pk > last`` (keyset pages): the ids of a large installation
    are never held whole, and a page costs one indexed query however far the walk has gone."""
    last = 0
    while page := list(ids.filter(pk__gt=last)[:size]):
        last = page[-1]
        yield page
