"""JSON Lines from Arrow columns, without a Python object per value.

The texts are byte-for-byte what ``json.encoder.encode_basestring`` / ``json.dumps`` write
(timestamps, which ``json.dumps`` cannot encode, become ISO 8601 UTC strings written by
Arrow's cast to string). Strings that need escaping (quotes, backslashes, control characters)
and floats are encoded by Python, once per distinct value; everything else by Arrow.

Why not orjson, one ``orjson.dumps`` per row: it needs a Python object per value and a dict
per row, and ``bench/export.py --variants orjson-jsonl`` measures that DPO export about
twice as slow (docs/exports.md, "Memory and speed").

How a batch of lines is assembled, and why: Arrow's ``binary_join_element_wise`` costs about
the same per argument and row whatever the length of the values, so joining one argument
per key and per value (about fifty for a DPO row) costs more than everything else. Most
columns of an export repeat few values (criterion, model, prompt) and neighbouring columns
repeat together (a task's prompt, images and runs), so adjacent columns are grouped into
blocks while a block's distinct combinations of values stay few; each block's text is
joined once per distinct combination and spread over the rows with ``take``, and only the
few block texts are joined per row. The grouping changes the work, never the bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# What encode_basestring escapes; other characters (non-ASCII included) are copied as is.
NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def _quote(values: pa.Array) -> pa.Array:
    quoted = pc.binary_join_element_wise('"', values, '"', "")
    escape = pc.fill_null(pc.match_substring_regex(values, NEEDS_ESCAPE), False)
    if pc.any(escape).as_py():
        fixed = pa.array([encode_basestring(v) for v in values.filter(escape).to_pylist()],
                         pa.string())
        quoted = pc.replace_with_mask(quoted, escape, fixed)
    return quoted


def iso_utc(values: pa.Array) -> pa.Array:
    """timestamp[us, UTC] -> "2025-01-31T12:00:05.123456Z" (nulls stay null).

    Arrow's cast of the naive UTC wall time writes "2025-01-31 12:00:05.123456" (always six
    digits for microseconds; no time zone database needed); the space becomes "T". Arrow's
    ``strftime`` writes the same texts at about a tenth of the speed.
    """
    texts = values.cast(pa.timestamp("us")).cast(pa.string())
    return pc.binary_join_element_wise(
        pc.replace_substring(texts, " ", "T", max_replacements=1), "Z", "")


def iso_utc_text(value: datetime) -> str:
    """One aware datetime as :func:`iso_utc` writes it: "2025-01-31T12:00:05.123456Z"."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class _Encoded:
    """A column as JSON texts: ``texts[codes[i]]`` is row i's text (``codes`` None: row i)."""

    texts: pa.Array
    codes: np.ndarray | None = None

    @property
    def distinct(self) -> int:
        return len(self.texts)


def _by_distinct(values: pa.Array, encode: Callable[[pa.Array], pa.Array]) -> _Encoded:
    """Encode each distinct value once; nulls get the last code, whose text is ``null``."""
    encoded = values.dictionary_encode()
    texts = pa.concat_arrays([encode(encoded.dictionary).cast(pa.string()),
                              pa.array(["null"], pa.string())])
    codes = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()
    return _Encoded(texts, codes.astype(np.int64, copy=False))


def _python_json(values: pa.Array) -> pa.Array:
    return pa.array([json.dumps(v) for v in values.to_pylist()], pa.string())


def _encode(values: pa.Array) -> _Encoded:
    """Any supported column -> its JSON texts, as ``json.dumps`` writes each value.

    A dictionary column is encoded once per dictionary entry (no hashing of its rows); an
    integer column whose values only increase (ids in id order) is cast row by row.
    """
    kind = values.type
    if pa.types.is_dictionary(kind):
        dictionary = values.dictionary
        texts = pc.fill_null(json_values(dictionary), "null") if len(dictionary) else \
            pa.array([], pa.string())
        codes = pc.fill_null(values.indices, len(dictionary)).to_numpy()
        return _Encoded(pa.concat_arrays([texts, pa.array(["null"], pa.string())]),
                        codes.astype(np.int64, copy=False))
    if pa.types.is_integer(kind) and not values.null_count and _increasing(values):
        return _Encoded(values.cast(pa.string()))
    if pa.types.is_null(kind):
        return _Encoded(pa.array(["null"], pa.string()), np.zeros(len(values), np.int64))
    if pa.types.is_string(kind):
        return _by_distinct(values, _quote)
    if pa.types.is_integer(kind):
        return _by_distinct(values, lambda distinct: distinct.cast(pa.string()))
    if pa.types.is_boolean(kind):
        codes = pc.fill_null(values.cast(pa.int8()), 2).to_numpy().astype(np.int64)
        return _Encoded(pa.array(["false", "true", "null"], pa.string()), codes)
    if pa.types.is_floating(kind):  # Python's repr differs from Arrow's (1.0 vs 1)
        return _by_distinct(values, _python_json)
    if pa.types.is_timestamp(kind) and kind.unit == "us" and kind.tz in ("UTC", "+00:00"):
        quoted = pc.binary_join_element_wise('"', iso_utc(values), '"', "")  # null stays null
        return _Encoded(pc.fill_null(quoted, "null"))
    raise TypeError(f"No JSON encoding for {kind}")


def _increasing(values: pa.Array) -> bool:
    numbers = values.to_numpy()
    return len(numbers) > 1 and bool(np.all(numbers[1:] > numbers[:-1]))


def json_values(values: pa.Array) -> pa.Array:
    """Any column -> JSON texts, as ``json.dumps`` writes each value (nulls as ``null``)."""
    encoded = _encode(values)
    if encoded.codes is None:
        return encoded.texts
    return encoded.texts.take(pa.array(encoded.codes))


def _combine(codes: np.ndarray, k: int, more: np.ndarray, m: int) -> tuple[np.ndarray, int]:
    """Codes of the distinct (codes, more) pairs, numbered 0..k'-1, and k'."""
    pair = codes * m + more
    if k * m <= 4 * len(codes) + 1024:  # small product: a dense table beats hashing
        present = np.zeros(k * m, np.bool_)
        present[pair] = True
        number = np.cumsum(present) - 1
        return number[pair], int(number[-1]) + 1
    encoded = pc.dictionary_encode(pa.array(pair))
    return encoded.indices.to_numpy().astype(np.int64), len(encoded.dictionary)


def _block_texts(pieces: list, rows: int) -> pa.Array:
    """Join ``pieces`` (scalars and arrays of ``rows`` values) element-wise."""
    if len(pieces) == 1 and isinstance(pieces[0], str):
        return pa.array([pieces[0]] * rows, pa.string())
    return pc.binary_join_element_wise(*pieces, "")


def _blocks(prefixes: Sequence[str], encoded: Sequence[_Encoded], n: int) -> list:
    """The pieces of every row: scalars, and one text array per block of columns."""
    limit = max(n // 2, 1)
    result: list = []
    i = 0
    while i < len(encoded):
        column = encoded[i]
        if column.codes is None or column.distinct > limit:  # a column of its own
            texts = column.texts if column.codes is None else column.texts.take(
                pa.array(column.codes))
            result += [prefixes[i], texts]
            i += 1
            continue
        codes, k, j = column.codes, column.distinct, i + 1
        while j < len(encoded) and encoded[j].codes is not None:
            joined, joined_k = _combine(codes, k, encoded[j].codes, encoded[j].distinct)
            if joined_k > limit:
                break
            codes, k, j = joined, joined_k, j + 1
        # One row of each combination (any will do); codes no row has (a column's "null"
        # when it has no nulls) keep row 0 and their texts are never taken.
        sample = np.zeros(k, np.int64)
        sample[codes] = np.arange(n, dtype=np.int64)
        pieces: list = []
        for position in range(i, j):
            member = encoded[position]
            assert member.codes is not None
            pieces += [prefixes[position],
                       member.texts.take(pa.array(member.codes[sample]))]
        result.append(_block_texts(pieces, k).take(pa.array(codes)))
        i = j
    return result


def json_block(keys: Sequence[str], columns: Sequence[pa.Array]) -> pa.Buffer:
    """``{"key": value, ...}\\n`` per row, keys in the given order, compact separators.

    Returns the bytes of all lines as one Arrow buffer (written as is, never copied into a
    Python ``bytes``).
    """
    n = len(columns[0]) if columns else 0
    if not n:
        return pa.py_buffer(b"")
    prefixes = [("{" if position == 0 else ",") + encode_basestring(key) + ":"
                for position, key in enumerate(keys)]
    pieces = _blocks(prefixes, [_encode(column) for column in columns], n)
    pieces.append("}\n")
    lines = pc.binary_join_element_wise(*_merge_scalars(pieces), "")
    return _data(lines)


def _merge_scalars(pieces: list) -> list:
    """Adjacent scalar pieces as one (fewer arguments to join)."""
    merged: list = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def json_lines(keys: Sequence[str], columns: Sequence[pa.Array]) -> bytes:
    """``json_block`` as ``bytes``."""
    return json_block(keys, columns).to_pybytes()


def _data(lines: pa.Array) -> pa.Buffer:
    """The bytes of all values of a string array (no nulls), back to back (no copy)."""
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    return lines.buffers()[2].slice(start, end - start)


__all__ = ["iso_utc", "json_block", "json_lines", "json_values"]

