"""Judgment rows as Arrow record batches of ``columns.ROW_SCHEMA``, from two sources.

``orm_batches`` is the portable path (SQLite and any database): ``values_list`` tuples
transposed into columns. ``copy_batches`` is the PostgreSQL fast path: the same SELECT
(built from the same ``COLUMNS``, minus the lookup columns) streamed through
``COPY ... TO STDOUT (FORMAT csv)`` with psycopg's ``Cursor.copy()`` and parsed by Arrow's
CSV reader, so no Python object is built per value; prompt and image columns are joined in
Arrow from small lookup tables read once. Both yield batches of at most ``size`` rows in the
query's order.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import closing
from itertools import islice

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from django.db import connection
from django.db.models import Q, QuerySet

from evalhub.campaigns.models import ComparisonTask, Judgment, TaskImage
from evalhub.exports.columns import COLUMNS, EXTRA, ROW_SCHEMA, Column
from evalhub.exports.prefetch import prefetch

# Set to False (tests do) to use the portable path on PostgreSQL too.
USE_COPY = True


def copy_available() -> bool:
    return USE_COPY and connection.vendor == "postgresql"


def orm_batches(qs: QuerySet[Judgment], order: tuple[str, ...], size: int
                ) -> Iterator[pa.RecordBatch]:
    """The portable source: ``QuerySet.iterator()`` rows, converted column by column."""
    return orm_query_batches(
        qs.order_by(*order).values_list(*[c.orm_path for c in COLUMNS]), COLUMNS, size)


def orm_query_batches(rows: QuerySet, columns: Sequence[Column], size: int
                      ) -> Iterator[pa.RecordBatch]:
    """Batches of the ``columns`` a ``values_list`` query selects (in that order), read with
    ``QuerySet.iterator()``; a UUID ``client_id`` becomes its text, as the COPY path sends it."""
    rows = rows.iterator(chunk_size=size)
    names = [c.name for c in columns]
    i_client = names.index("client_id") if "client_id" in names else None
    schema = pa.schema([(c.name, c.type) for c in columns])
    while chunk := list(islice(rows, size)):
        values = [list(column) for column in zip(*chunk, strict=True)]
        if i_client is not None:
            values[i_client] = [None if v is None else str(v) for v in values[i_client]]
        yield pa.RecordBatch.from_arrays(
            [pa.array(column, c.type) for column, c in zip(values, columns, strict=True)],
            schema=schema)


def lookup_tables(campaign_id: int) -> dict[str, tuple[np.ndarray, dict[str, pa.Array]]]:
    """Key column -> (sorted ids, {column: values}) for every lookup column.

    One query per related table (prompts; images, for both A and B and for every image of a
    best-of-K task), restricted to the objects the campaign's tasks use: a judgment's task
    always belongs to its campaign.
    """
    tasks = ComparisonTask.objects.filter(campaign_id=campaign_id).order_by()
    members = TaskImage.objects.filter(task__campaign_id=campaign_id).order_by()
    by_model: dict = {}
    for column in COLUMNS:
        if column.lookup is not None:
            model = ComparisonTask._meta.get_field(column.lookup.relation).related_model
            by_model.setdefault(model, []).append(column)
    tables: dict[str, tuple[np.ndarray, dict[str, pa.Array]]] = {}
    for model, columns in by_model.items():
        fields = sorted({c.lookup.field for c in columns})  # type: ignore[union-attr]
        used = Q()
        for relation in sorted({c.lookup.relation for c in columns}):  # type: ignore
            used |= Q(pk__in=tasks.values(f"{relation}_id"))
        if model is TaskImage._meta.get_field("image").related_model:
            used |= Q(pk__in=members.values("image_id"))  # best-of-K images past A and B
        rows = list(model.objects.filter(used).order_by("pk").values_list("pk", *fields))
        values = list(zip(*rows, strict=True)) if rows else [()] * (len(fields) + 1)
        ids = np.asarray(values[0], dtype=np.int64)
        for column in columns:
            lookup = column.lookup
            assert lookup is not None
            array = pa.array(values[1 + fields.index(lookup.field)], column.type)
            tables.setdefault(lookup.key, (ids, {}))[1][column.name] = array
    return tables


def join_lookups(batch: pa.RecordBatch, tables: dict) -> pa.RecordBatch:
    """Add the lookup columns (in ``COLUMNS`` order) by id (binary search in sorted ids).

    Columns that were not read (see ``copy_batches``' ``skip``) are null; ``votes`` and
    ``agreement`` (``columns.EXTRA``), when the batch has them, follow.
    """
    joined: dict[str, pa.Array] = {}
    for key, (ids, columns) in tables.items():
        wanted = batch.column(key).to_numpy(zero_copy_only=False)
        index = np.minimum(np.searchsorted(ids, wanted), max(len(ids) - 1, 0))
        if len(wanted) and (not len(ids) or not np.array_equal(ids[index], wanted)):
            raise RuntimeError(f"Export lookup: a judgment's {key} is not one of its "
                               "campaign's tasks' (judgment and task campaigns differ).")
        for name, values in columns.items():
            joined[name] = values.take(pa.array(index))
    read = set(batch.schema.names)
    arrays = [joined[c.name] if c.lookup else batch.column(c.name) if c.name in read
              else pa.nulls(batch.num_rows, c.type) for c in COLUMNS]
    extra = [c for c in EXTRA if c.name in read]
    if not extra:
        return pa.RecordBatch.from_arrays(arrays, schema=ROW_SCHEMA)
    schema = pa.schema([*ROW_SCHEMA, *((c.name, c.type) for c in extra)])
    return pa.RecordBatch.from_arrays([*arrays, *(batch.column(c.name) for c in extra)],
                                      schema=schema)


def _parse(data: bytearray, direct: list[Column]) -> pa.RecordBatch:
    table = pacsv.read_csv(
        pa.BufferReader(pa.py_buffer(data)),
        read_options=pacsv.ReadOptions(column_names=[c.name for c in direct]),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c.name: c.type for c in direct}, strings_can_be_null=True,
            quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"]),
    ).combine_chunks()
    return pa.RecordBatch.from_arrays([table.column(c.name).chunk(0) if table.num_rows else
                                       pa.array([], c.type) for c in direct],
                                      names=[c.name for c in direct])


def copy_batches(qs: QuerySet[Judgment], order: tuple[str, ...], size: int, *,
                 campaign_id: int, skip: Collection[str] = ()) -> Iterator[pa.RecordBatch]:
    """The PostgreSQL source: CSV from ``COPY (SELECT ...) TO STDOUT``, parsed by Arrow.

    Columns named in ``skip`` (never lookup keys) are not read: they are null in the batches.
    """
    direct = [c for c in COLUMNS if c.lookup is None and c.name not in skip]
    return copy_query_batches(qs.order_by(*order).values_list(*[c.path for c in direct]),
                              direct, size, campaign_id=campaign_id)


def copy_query_batches(rows: QuerySet, direct: list[Column], size: int, *, campaign_id: int,
                       prepare: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None
                       ) -> Iterator[pa.RecordBatch]:
    """Batches of ``columns.ROW_SCHEMA`` from a ``values_list`` query of ``direct`` columns.

    ``rows`` selects the ``direct`` columns in that order (names may differ: CSV has no
    header). ``prepare``, if given, runs on each parsed batch before the lookup columns are
    joined: it may add columns (e.g. ``votes``, ``agreement``) and drop rows.

    In CSV, NULL is an unquoted empty field and '' a quoted one, so both survive; booleans
    are t/f; timestamptz carries its UTC offset. PostgreSQL sends one CopyData message per
    row, so every message is a whole CSV record and a batch is ``size`` messages joined.

    Everything that touches Django's (thread-local) connection happens here, in the
    caller's thread; the returned iterator only uses the psycopg connection it is given, so
    it may run in another thread (``prefetch``) inside the caller's transaction.
    """
    return copy_statement_batches(lambda compose: compose(rows), direct, size,
                                  campaign_id=campaign_id, prepare=prepare)


def compose(rows: QuerySet) -> str:
    """A queryset's SELECT with its parameters inlined (quoted by psycopg)."""
    sql, params = rows.query.sql_with_params()
    return connection.ops.compose_sql(sql, params)


def copy_statement_batches(select: Callable[[Callable[[QuerySet], str]], str],
                           direct: list[Column], size: int, *, campaign_id: int,
                           prepare: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None
                           ) -> Iterator[pa.RecordBatch]:
    """``copy_query_batches`` for a SELECT written around querysets.

    ``select(compose)`` returns the SELECT; it calls ``compose(queryset)`` for the SQL of
    each queryset it uses.
    """
    tables = lookup_tables(campaign_id)
    connection.ensure_connection()
    statement = f"COPY ({select(compose)}) TO STDOUT WITH (FORMAT csv)"
    return _copy_stream(connection.connection, statement, direct, tables, size, prepare)


def copy_chunks(conn: psycopg.Connection, statement: str, rows: int) -> Iterator[bytearray]:
    """The output of ``statement`` (a ``COPY ... TO STDOUT``), ``rows`` rows per chunk.

    psycopg's ``Copy`` yields one CopyData message, one row, at a time; a chunk is ``rows`` of
    them appended to one ``bytearray`` as they arrive (keeping every message until the chunk
    is complete costs an allocation per row that outlives the loop). Every chunk but the last
    has ``rows`` rows; none is empty. When the caller stops early (closes the generator),
    psycopg cancels the COPY and drains it, so the connection stays usable.
    """
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        chunk, count = bytearray(), 0
        for data in copy:
            chunk += data
            count += 1
            if count == rows:
                yield chunk
                chunk, count = bytearray(), 0
        if count:
            yield chunk


def _copy_stream(conn: psycopg.Connection, statement: str, direct: list[Column], tables: dict,
                 size: int, prepare: Callable[[pa.RecordBatch], pa.RecordBatch] | None
                 ) -> Iterator[pa.RecordBatch]:
    # Closing this generator closes the COPY now, in this thread (not whenever the garbage
    # collector gets to it, in whichever thread it runs).
    with closing(copy_chunks(conn, statement, size)) as chunks:
        for data in chunks:
            batch = _parse(data, direct)
            if prepare is not None:
                batch = prepare(batch)
            if batch.num_rows:
                yield join_lookups(batch, tables)


def row_batches(qs: QuerySet[Judgment], order: tuple[str, ...], size: int, *,
                campaign_id: int, skip: Collection[str] = ()) -> Iterator[pa.RecordBatch]:
    """Batches from the fastest source this database offers.

    ``skip``: columns the caller does not read; the fast path leaves them null, the portable
    path reads them anyway (so the tests that compare both paths notice a caller that reads
    a column it skipped).
    """
    if copy_available():
        return prefetch(copy_batches(qs, order, size, campaign_id=campaign_id, skip=skip))
    return orm_batches(qs, order, size)
