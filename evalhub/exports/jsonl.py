"""JSON Lines from Arrow columns, without a Python object per value.

Each column becomes an array of JSON texts and the lines are joined by Arrow. The texts are
byte-for-byte what ``json.encoder.encode_basestring`` / ``json.dumps`` write: strings that
need escaping (quotes, backslashes, control characters) and floats are encoded by Python,
once per distinct value; everything else (plain strings, integers) by Arrow.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from json.encoder import encode_basestring
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

# What encode_basestring escapes; other characters (non-ASCII included) are copied as is.
NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def _by_distinct(values: pa.Array, encode: Callable[[Any], str]) -> pa.Array:
    """``encode`` applied to each distinct value once; nulls stay null."""
    encoded = values.dictionary_encode()
    texts = pa.array([encode(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return texts.take(encoded.indices)


def _quote(values: pa.Array) -> pa.Array:
    quoted = pc.binary_join_element_wise('"', values, '"', "")
    escape = pc.fill_null(pc.match_substring_regex(values, NEEDS_ESCAPE), False)
    if pc.any(escape).as_py():
        fixed = pa.array([encode_basestring(v) for v in values.filter(escape).to_pylist()],
                         pa.string())
        quoted = pc.replace_with_mask(quoted, escape, fixed)
    return quoted


def json_strings(values: pa.Array) -> pa.Array:
    """String column -> JSON string literals (``null`` for nulls).

    Encoded once per distinct value: most columns repeat a few values (criterion, model,
    prompt), and for the others this costs about what encoding every row would.
    """
    encoded = values.dictionary_encode()
    return pc.fill_null(_quote(encoded.dictionary).take(encoded.indices), "null")


DAY_US = 86_400_000_000
EPOCH = date(1970, 1, 1)


def _pad(values: pa.Array, width: int) -> pa.Array:
    return pc.utf8_lpad(values.cast(pa.string()), width, "0")


def iso_utc(values: pa.Array) -> pa.Array:
    """timestamp[us, UTC] -> "2025-01-31T12:00:05.123456Z" (Arrow's strftime, 5x faster).

    The date is formatted once per distinct day, the time of day by integer arithmetic.
    """
    micros = values.cast(pa.int64())
    day = pc.divide(micros, DAY_US)  # truncates toward zero: fix negative remainders
    rem = pc.subtract(micros, pc.multiply(day, DAY_US))
    negative = pc.less(rem, 0)
    day = pc.if_else(negative, pc.subtract(day, 1), day)
    rem = pc.if_else(negative, pc.add(rem, DAY_US), rem)
    days = day.dictionary_encode()
    dates = pa.array([None if d is None else (EPOCH + timedelta(days=d)).isoformat() + "T"
                      for d in days.dictionary.to_pylist()], pa.string()).take(days.indices)
    seconds = pc.divide(rem, 1_000_000)
    hours = pc.divide(seconds, 3600)
    minutes = pc.divide(pc.subtract(seconds, pc.multiply(hours, 3600)), 60)
    secs = pc.subtract(seconds, pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)))
    fraction = pc.subtract(rem, pc.multiply(seconds, 1_000_000))
    return pc.binary_join_element_wise(
        dates, _pad(hours, 2), ":", _pad(minutes, 2), ":", _pad(secs, 2), ".",
        _pad(fraction, 6), "Z", "")


def json_values(values: pa.Array) -> pa.Array:
    """Any column -> JSON texts, as ``json.dumps`` writes each value (nulls as ``null``)."""
    kind = values.type
    if pa.types.is_null(kind):
        return pc.fill_null(values.cast(pa.string()), "null")
    if pa.types.is_string(kind):
        return json_strings(values)
    if pa.types.is_integer(kind):
        return pc.fill_null(values.cast(pa.string()), "null")
    if pa.types.is_boolean(kind):
        return pc.fill_null(pc.if_else(values, "true", "false"), "null")
    if pa.types.is_floating(kind):  # Python's repr differs from Arrow's (1.0 vs 1)
        return pc.fill_null(_by_distinct(values, json.dumps), "null")
    raise TypeError(f"No JSON encoding for {kind}")


def json_lines(keys: Sequence[str], columns: Sequence[pa.Array]) -> bytes:
    """``{"key": value, ...}\\n`` per row, keys in the given order, compact separators."""
    if not len(columns[0]):
        return b""
    pieces: list = []
    for position, (key, column) in enumerate(zip(keys, columns, strict=True)):
        pieces += [("{" if position == 0 else ",") + encode_basestring(key) + ":",
                   json_values(column)]
    pieces.append("}\n")
    lines = pc.binary_join_element_wise(*pieces, "")
    return _concat(lines)


def _concat(lines: pa.Array) -> bytes:
    """The bytes of all values of a string array (no nulls), back to back."""
    offsets = pa.Array.from_buffers(pa.int32(), len(lines) + 1, [None, lines.buffers()[1]],
                                    offset=lines.offset)
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    return lines.buffers()[2][start:end].to_pybytes()
