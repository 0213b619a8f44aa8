"""Querysets compiled once per shape, then run with new values.

The ORM builds and compiles a queryset anew on every call: for the rating path (a lease lock
with six subqueries, a candidate walk with three ``NOT EXISTS`` probes and five joined
relations) that was about two thirds of the web process's CPU per vote, for SQL text that
never changes between votes. A :class:`PreparedQuery` keeps the ORM as the one place the
query is written: ``build`` returns an ordinary queryset in which the values that vary are
:class:`Param` placeholders; it is compiled once per database connection (and shape), and
each run binds the values and turns the rows into model instances as ``QuerySet`` does
(``select_related`` objects and annotations included).

Writes likewise: :class:`PreparedUpdate` is ``queryset.update(**changes)`` and
:class:`PreparedInsert` is ``bulk_create`` of a fixed number of rows, each compiled once per
connection and shape, their values prepared for the database as the ORM's own update and
insert prepare them.

Use them only for hot, fixed-shape statements: anything that changes the SQL text (the length
of an ``IN`` list, an optional filter) must be part of the ``shape`` key passed to ``build``.

psycopg turns each statement's ``%s`` into ``$1, $2, ...`` (a regular-expression split of the
whole text) on every execute, and remembers the result only for statements up to 4,096
characters. The rating path's lease lock and serving walk are longer (4,100-4,800, the ORM's
quoted column lists): splitting them again cost about 0.2 ms of CPU each, per vote.
:func:`cache_long_statement_conversion` raises that limit (at app start, evalhub/core/apps.py).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, transaction
from django.db.models import Expression, Field, Model, QuerySet, sql
from django.db.models.fields import AutoFieldMixin
from django.db.models.query import get_related_populators
from django.db.models.sql.compiler import SQLCompiler

M = TypeVar("M", bound=Model)
T = TypeVar("T")

#: The attribute of a Django connection object that holds its compiled statements.
_STATEMENTS = "_evalhub_prepared_statements"

# psycopg's conversion cache keeps 128 statements (an LRU): at this length at most a few MB.
CACHED_STATEMENT_LENGTH = 16_384


def cache_long_statement_conversion() -> None:
    """Let psycopg remember the placeholder conversion of statements up to
    :data:`CACHED_STATEMENT_LENGTH` characters (its default: 4,096). A module setting of
    psycopg's, read on every execute; without psycopg (SQLite only) nothing to do."""
    try:
        from psycopg import _queries
    except ImportError:
        return
    if getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", 0) < CACHED_STATEMENT_LENGTH:
        _queries.MAX_CACHED_STATEMENT_LENGTH = CACHED_STATEMENT_LENGTH


@dataclass(frozen=True)
class _Slot:
    """Where a named value goes in the compiled parameter list."""

    name: str
    field: Field
    # A value stored in a column (an update's SET, an insert): converted as the ORM converts
    # saved values (get_db_prep_save; JSON fields keep None as SQL NULL), else as a literal.
    save: bool = False

    def prepare(self, value: Any, connection: Any) -> Any:
        if self.save:
            return self.field.get_db_prep_save(value, connection)
        return self.field.get_db_prep_value(value, connection)


class Param(Expression):
    """A named placeholder: compiled as one query parameter, bound by :meth:`PreparedQuery.run`.

    ``output_field`` converts the bound value for the database (``get_db_prep_value``: UUIDs
    as hex on SQLite, aware datetimes, ...), as a literal in a filter would be.
    """

    def __init__(self, name: str, output_field: Field, *, save: bool = False) -> None:
        super().__init__(output_field=output_field)
        self.name = name
        self.save = save

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, tuple]:
        return "%s", (_Slot(self.name, self.output_field, self.save),)

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
    params: _Params
    init_list: list[str]
    model_fields: slice
    populators: list
    annotation_col_map: dict[str, int]
    model: type[Model]
    converters: dict


class _PerConnection(Generic[T]):
    """Compiled statements cached per database connection (connections are per thread in
    Django, and a new connection must not reuse another's) and per shape.

    The cache lives on the connection object itself, so it goes when Django lets go of the
    connection. Held anywhere else (a thread-local of this module-level object, as it once
    was), it kept every connection it had seen alive, and open on the database: a connection
    the thread had replaced stayed in PostgreSQL's session list until the process exited.
    """

    def _cached(self, using: str, shape: Hashable, compile_: Callable[[], T]) -> T:
        statements: dict = connections[using].__dict__.setdefault(_STATEMENTS, {})
        key = (self, shape)
        compiled = statements.get(key)
        if compiled is None:
            compiled = statements[key] = compile_()
        return compiled


class _Params:
    """A compiled parameter list (constants and placeholders, in order), bound per run. A
    placeholder used several times (the rater's id in each subquery) is prepared once."""

    def __init__(self, params: Iterable[Any]) -> None:
        params = list(params)
        self.slots = list(dict.fromkeys(p for p in params if isinstance(p, _Slot)))
        index = {slot: position for position, slot in enumerate(self.slots)}
        self.template = [(index[p], None) if isinstance(p, _Slot) else (-1, p) for p in params]

    def bind(self, values: dict[str, Any], connection: Any) -> tuple:
        prepared = [slot.prepare(values[slot.name], connection) for slot in self.slots]
        return tuple(prepared[at] if at >= 0 else constant for at, constant in self.template)


def _execute(using: str, statement: str, params: tuple) -> int:
    """Run a write; the rows it touched. A failure inside ``atomic`` marks the transaction
    for rollback, as the ORM's writes do."""
    connection = connections[using]
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


class PreparedQuery(_PerConnection[_Compiled], Generic[M]):
    """A queryset written once with the ORM, compiled once per connection and shape."""

    def __init__(self, build: Callable[..., QuerySet[M]]) -> None:
        super().__init__()
        self._build = build

    def _compile(self, using: str, shape: tuple) -> _Compiled:
        queryset = self._build(*shape)
        compiler = queryset.query.get_compiler(using=using)
        sql_text, params = compiler.as_sql()
        info = compiler.klass_info
        fields = info["select_fields"]
        model_fields = slice(fields[0], fields[-1] + 1)
        return _Compiled(
            sql=sql_text, params=_Params(params),
            init_list=[f[0].target.attname for f in compiler.select[model_fields]],
            model_fields=model_fields,
            populators=get_related_populators(info, compiler.select, using),
            annotation_col_map=dict(compiler.annotation_col_map or {}),
            model=info["model"],
            converters=compiler.get_converters(
                [s[0] for s in compiler.select[:compiler.col_count]]),
        )

    def run(self, *shape: Hashable, using: str = "default", **values: Any) -> list[M]:
        """The rows for these values, as model instances (like ``list(queryset)``)."""
        compiled = self._cached(using, shape, lambda: self._compile(using, shape))
        connection = connections[using]
        params = compiled.params.bind(values, connection)
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



class PreparedUpdate(_PerConnection[tuple[str, _Params]]):
    """``queryset.update(**changes)``, compiled once per connection and shape.

    ``build(*shape)`` returns the queryset and the changes (field name -> value or expression,
    as ``update`` takes them); values that vary are :class:`Param` placeholders, converted as
    ``update`` converts saved values.
    """

    def __init__(self, build: Callable[..., tuple[QuerySet, dict[str, Any]]]) -> None:
        super().__init__()
        self._build = build

    def _compile(self, using: str, shape: tuple) -> tuple[str, _Params]:
        queryset, changes = self._build(*shape)
        query = queryset.query.chain(sql.UpdateQuery)
        query.add_update_values({
            name: Param(value.name, value.output_field, save=True)
            if isinstance(value, Param) else value
            for name, value in changes.items()})
        query.annotations = {}  # as QuerySet.update: none in the WHERE's subqueries
        statement, params = query.get_compiler(using).as_sql()
        return statement, _Params(params)

    def run(self, *shape: Hashable, using: str = "default", **values: Any) -> int:
        """Update the rows for these values; how many there were."""
        statement, params = self._cached(using, shape, lambda: self._compile(using, shape))
        return _execute(using, statement, params.bind(values, connections[using]))


class PreparedInsert(_PerConnection[tuple[str, _Params, list[Field]]], Generic[M]):
    """``Model.objects.bulk_create(rows)`` compiled once per connection and number of rows.

    Each row's values are prepared as the ORM's insert prepares them (``pre_save``, which
    fills ``auto_now_add`` fields, then ``get_db_prep_save``); values must be plain values,
    not expressions. Unlike ``bulk_create``, a key the database generates (an ``AutoField``
    primary key) is not read back into the rows.
    """

    def __init__(self, model: type[M]) -> None:
        super().__init__()
        self._model = model
        pk = model._meta.pk
        self._fields = [f for f in model._meta.concrete_fields
                        if not (f is pk and isinstance(f, AutoFieldMixin))
                        and not f.generated]

    def _compile(self, using: str, count: int) -> tuple[str, _Params, list[Field]]:
        rows = []
        for row in range(count):
            obj = self._model()
            for field in self._fields:
                setattr(obj, field.attname, Param(f"{row}.{field.attname}", field, save=True))
            rows.append(obj)
        query = sql.InsertQuery(self._model)
        query.insert_values(self._fields, rows, raw=True)  # raw: the placeholders as they are
        (statement, params), = query.get_compiler(using).as_sql()
        return statement, _Params(params), self._fields

    def run(self, rows: list[M], using: str = "default") -> None:
        """Insert ``rows`` (model instances) in one statement."""
        count = len(rows)
        statement, params, fields = self._cached(using, count,
                                                 lambda: self._compile(using, count))
        values = {f"{row}.{field.attname}": field.pre_save(obj, add=True)
                  for row, obj in enumerate(rows) for field in fields}
        _execute(using, statement, params.bind(values, connections[using]))
        for obj in rows:
            obj._state.adding, obj._state.db = False, using
