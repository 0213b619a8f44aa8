"""Querysets compiled once per shape, then run with new values.

The ORM builds and compiles a queryset anew on every call: for the rating path (a lease lock
with six subqueries, a candidate walk with three ``NOT EXISTS`` probes and five joined
relations) that was about two thirds of the web process's CPU per vote, for SQL text that
never changes between votes. A :class:`PreparedQuery` keeps the ORM as the one place the
query is written: ``build`` returns an ordinary queryset in which the values that vary are
:class:`Param` placeholders; it is compiled once per database connection (and shape), and
each run binds the values and turns the rows into model instances as ``QuerySet`` does
(``select_related`` objects and annotations included).

Use it only for hot, fixed-shape reads: anything that changes the SQL text (the length of an
``IN`` list, an optional filter) must be part of the ``shape`` key passed to ``build``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections
from django.db.models import Expression, Field, Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.models.sql.compiler import SQLCompiler

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class _Slot:
    """Where a named value goes in the compiled parameter list."""

    name: str
    field: Field


class Param(Expression):
    """A named placeholder: compiled as one query parameter, bound by :meth:`PreparedQuery.run`.

    ``output_field`` converts the bound value for the database (``get_db_prep_value``: UUIDs
    as hex on SQLite, aware datetimes, ...), as a literal in a filter would be.
    """

    def __init__(self, name: str, output_field: Field) -> None:
        super().__init__(output_field=output_field)
        self.name = name

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, tuple]:
        return "%s", (_Slot(self.name, self.output_field),)

    def get_group_by_cols(self) -> list:
        return []


def numbered_params(name: str, count: int, field: Field) -> list[Param]:
    """``count`` placeholders ``name0``, ``name1``, ...: an ``IN`` list of a fixed length (the
    length is then part of the query's shape). Bound by :func:`numbered_values`."""
    return [Param(f"{name}{index}", field) for index in range(count)]


def numbered_values(name: str, items: Iterable[Any]) -> dict[str, Any]:
    """The values of :func:`numbered_params` placeholders, as keywords for ``run``."""
    return {f"{name}{index}": item for index, item in enumerate(items)}


@dataclass
class _Compiled:
    sql: str
    params: tuple  # constants and _Slots, in order
    init_list: list[str]
    model_fields: slice
    populators: list
    annotation_col_map: dict[str, int]
    model: type[Model]
    converters: dict


class PreparedQuery(Generic[M]):
    """A queryset written once with the ORM, compiled once per connection and shape."""

    def __init__(self, build: Callable[..., QuerySet[M]]) -> None:
        self._build = build
        self._local = threading.local()  # connections are per thread in Django

    def _compiled(self, using: str, shape: tuple) -> _Compiled:
        connection = connections[using]
        cache: dict = getattr(self._local, "cache", None)
        if cache is None or getattr(self._local, "connection", None) is not connection:
            cache = self._local.cache = {}
            self._local.connection = connection
        compiled = cache.get(shape)
        if compiled is None:
            queryset = self._build(*shape)
            compiler = queryset.query.get_compiler(using=using)
            sql, params = compiler.as_sql()
            info = compiler.klass_info
            fields = info["select_fields"]
            model_fields = slice(fields[0], fields[-1] + 1)
            compiled = cache[shape] = _Compiled(
                sql=sql, params=tuple(params),
                init_list=[f[0].target.attname for f in compiler.select[model_fields]],
                model_fields=model_fields,
                populators=get_related_populators(info, compiler.select, using),
                annotation_col_map=dict(compiler.annotation_col_map or {}),
                model=info["model"],
                converters=compiler.get_converters(
                    [s[0] for s in compiler.select[:compiler.col_count]]),
            )
        return compiled

    def run(self, *shape: Hashable, using: str = "default", **values: Any) -> list[M]:
        """The rows for these values, as model instances (like ``list(queryset)``)."""
        compiled = self._compiled(using, shape)
        connection = connections[using]
        params = tuple(
            p.field.get_db_prep_value(values[p.name], connection) if isinstance(p, _Slot)
            else p
            for p in compiled.params
        )
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        converters = compiled.converters
        objects = []
        for row in rows:
            if converters:
                row = list(row)
                for position, (convs, expression) in converters.items():
                    for converter in convs:
                        row[position] = converter(row[position], expression, connection)
            obj = compiled.model.from_db(using, compiled.init_list, row[compiled.model_fields])
            for populator in compiled.populators:
                populator.populate(row, obj)
            for name, position in compiled.annotation_col_map.items():
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects

