"""Reading CSV input with every bad line reported, not only the first (as ``core/jsonl.py``
does for JSON Lines). Prompt files and image manifests both read their CSV here.

The csv module's default reader has two traps this avoids: a field past its size limit raises
``csv.Error`` (reported here on its line, and the reader goes on), and a quote never closed
runs silently to the end of the file, swallowing every following row into one field (refused
here, on the line where the quote opens). Quoted fields that do close may span lines, as CSV
allows. :func:`contains_nul` is the check both make on values read from CSV or JSON Lines
before they are stored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

UNCLOSED_QUOTE = ("a quote opened in this row is never closed, so the rest of the file would "
                  "be one value")


def csv_problem(exc: csv.Error) -> str:
    """What a ``csv.Error`` means, in the words an error list shows."""
    message = str(exc)
    if "field larger than field limit" in message:
        return f"a field is longer than {csv.field_size_limit()} characters"
    return f"not valid CSV ({message})"


def ends_inside_quotes(record_lines: list[str]) -> bool:
    """Whether these lines end inside a quoted field. The default csv reader takes a quote
    never closed to run to the end of the file, silently; the strict one says so."""
    try:
        for _ in csv.reader(record_lines, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _unclosed_quote(lines: list[str], read_before: int, read_after: int) -> int | None:
    """The line where a quote that swallows the rest of the file opens, or None. The record
    read from ``lines[read_before:read_after]`` can only have swallowed the rest if it reached
    the end of the file; the reader skipped the empty lines before it."""
    if read_after != len(lines) or not ends_inside_quotes(lines[read_before:]):
        return None
    skipped = next((n for n, line in enumerate(lines[read_before:]) if line.strip("\r\n")), 0)
    return read_before + 1 + skipped


def read_csv(text: str, errors: list[str], *, label: str = "line"
             ) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header's column names and, lazily, ``(line number, record)`` for each good row.

    Bad rows are reported into ``errors`` as ``"<label> N: ..."`` as the rows are read (so a
    caller's own problems with a row interleave in line order) and left out: a field past the
    csv module's limit, a quote never closed, more values than columns. A record's line number
    is its last line (a quoted field may span lines). A header that cannot be read is reported
    the same way and gives no columns and no rows.
    """
    lines = list(io.StringIO(text))  # what the reader reads, so line numbers index it
    reader = csv.DictReader(lines)
    try:
        fieldnames = list(reader.fieldnames or [])
    except csv.Error as exc:
        errors.append(f"{label} {reader.reader.line_num}: {csv_problem(exc)}")
        return [], iter(())
    if fieldnames and (line := _unclosed_quote(lines, 0, reader.line_num)) is not None:
        errors.append(f"{label} {line}: {UNCLOSED_QUOTE}")
        return [], iter(())
    return fieldnames, _records(reader, lines, errors, label)


def _records(reader: csv.DictReader, lines: list[str], errors: list[str], label: str
             ) -> Iterator[tuple[int, dict[str, str]]]:
    while True:
        # The underlying reader's count: DictReader's stays put when a row raises.
        read_before = reader.reader.line_num
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # A field past the size limit, say: that line is reported, the reader goes on.
            errors.append(f"{label} {reader.reader.line_num}: {csv_problem(exc)}")
            continue
        if (line := _unclosed_quote(lines, read_before, reader.line_num)) is not None:
            errors.append(f"{label} {line}: {UNCLOSED_QUOTE}")
            return
        if None in record:
            errors.append(f"{label} {reader.line_num}: more values than columns")
            continue
        yield reader.line_num, record


def contains_nul(value: object) -> bool:
    """Whether a value read from a file (text, or JSON lists and objects, keys included)
    holds a NUL character, which PostgreSQL stores in neither text nor jsonb columns."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(v) for v in value)
    return False
