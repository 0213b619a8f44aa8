"""``COPY (query) TO STDOUT`` rows, read at libpq level, in chunks of many rows.

psycopg's ``Copy.read()`` costs about 3 µs of Python per row (a generator and a wait per
CopyData message, and PostgreSQL sends one message per row); reading with the documented
``psycopg.pq`` API and libpq's blocking ``PQgetCopyData`` costs well under half of that.
The rows are appended to one ``bytearray`` per chunk as they arrive: keeping each row's
message alive until a chunk is complete and joining them costs three times as much (one
allocation per row that outlives the loop). The connection is left idle, as psycopg
expects: the COPY's final result is read, and an abandoned COPY is cancelled and drained.
"""

from __future__ import annotations

import select
from collections.abc import Iterator

import psycopg
from psycopg import pq


def copy_chunks(conn: psycopg.Connection, statement: str, rows: int
                ) -> Iterator[tuple[bytearray, int]]:
    """``(data, count)``: the CopyData messages of ``count`` rows (at most ``rows``) joined.

    Every chunk but the last has ``rows`` rows; no chunk is empty.
    """
    pgconn = conn.pgconn
    if pgconn.transaction_status == pq.TransactionStatus.ACTIVE:
        raise psycopg.ProgrammingError("the connection is busy")
    pgconn.send_query(statement.encode(conn.info.encoding))  # raises if it cannot send
    while pgconn.flush():  # the connection is non-blocking: send the whole query
        select.select([], [pgconn.socket], [])
    result = pgconn.get_result()
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        message = result.get_error_message() if result is not None else "no result"
        _finish(pgconn)
        raise psycopg.DatabaseError(message)
    finished = False
    try:
        get = pgconn.get_copy_data
        done = False
        while not done:
            chunk, count = bytearray(), 0
            while count < rows:
                size, data = get(0)  # blocks until a row (or the end) arrives
                if size < 0:
                    done = True
                    break
                chunk += data
                count += 1
            if count:
                yield chunk, count
        finished = True
    finally:
        if finished:
            _finish(pgconn)
        else:
            _abandon(conn)
            _finish(pgconn, cancelled=True)


def _abandon(conn: psycopg.Connection) -> None:
    """Cancel a COPY that is not read to its end, and discard what is still in flight."""
    conn.cancel()
    try:
        while conn.pgconn.get_copy_data(0)[0] >= 0:
            pass
    except psycopg.OperationalError:
        pass


def _finish(pgconn: pq.abc.PGconn, cancelled: bool = False) -> None:
    """Read the remaining results so the connection is idle again; raise a failed COPY.

    After ``_abandon`` the COPY fails with "canceling statement due to user request": that
    error is the one asked for, not raised.
    """
    error = None
    while (result := pgconn.get_result()) is not None:
        if result.status == pq.ExecStatus.FATAL_ERROR and error is None:
            error = result.get_error_message()
    if error is not None and not cancelled:
        raise psycopg.DatabaseError(error)
