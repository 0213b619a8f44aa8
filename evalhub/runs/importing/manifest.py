"""Parse an image manifest (CSV or JSONL rows of file, prompt, seed) into rows, or fail listing
every bad line.

``prompt_id`` and ``seed`` are integers and nothing else: in JSONL a JSON integer (not ``1.9``,
``true`` or ``"7"``), in CSV plain ASCII digits with an optional minus sign (not ``1_000``,
``٣`` or ``1e3``). Seeds follow the runs' one rule (``runs.services.seeds_check``: 0 to
``MAX_SEED``, what a 64-bit column stores).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from evalhub.core.csv_records import contains_nul, read_csv
from evalhub.core.errors import EvalHubError, ImportRejected
from evalhub.core.jsonl import iter_jsonl
from evalhub.runs.services import seeds_check

MANIFEST_NAMES = ("manifest.csv", "manifest.jsonl")

_CSV_INTEGER = re.compile(r"-?[0-9]+")
_KNOWN = {"file", "path", "prompt", "text", "prompt_id", "seed"}


@dataclass(frozen=True)
class ManifestRow:
    line: int
    file: str
    prompt: str  # prompt text; empty when prompt_id is given
    prompt_id: int | None
    seed: int
    metadata: dict[str, Any]


def _shown(value: Any, *, from_csv: bool = True) -> str:
    """A value as an error message quotes it, as Python (CSV text) or JSON writes it, cut
    short."""
    shown = repr(value) if from_csv else json.dumps(value, ensure_ascii=False)
    return shown if len(shown) <= 40 else f"{shown[:37]}..."


def _text(record: dict[str, Any], keys: tuple[str, ...], problems: list[str]) -> str | None:
    """The first of ``keys`` that holds a value, which must be text ("" when none does, None
    when the value is not text)."""
    for key in keys:
        value = record.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            problems.append(f"{key} is {type(value).__name__}, not text")
            return None
        return value.strip()
    return ""


def _integer(value: Any, name: str, problems: list[str], *, from_csv: bool) -> int | None:
    """An integer written as one: a JSON integer, or CSV text of ASCII digits."""
    if from_csv:
        text = value.strip()
        if _CSV_INTEGER.fullmatch(text):
            try:
                return int(text)
            except ValueError:  # past Python's digit limit for int(): no seed or id is that long
                problems.append(f"{name} {_shown(text)} is out of range")
                return None
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    problems.append(f"{name} {_shown(value, from_csv=from_csv)} is not an integer")
    return None


@dataclass(frozen=True)
class BadLine:
    """What could be read of a bad line: its ``file`` ("" when none could be read) and its
    prompt (``prompt`` text, "" when none could be read; or ``prompt_id``), so that an import
    checks them too and says every problem of the line in one answer."""

    line: int
    file: str
    prompt: str
    prompt_id: int | None


@dataclass(frozen=True)
class ManifestRead:
    """What :func:`manifest_read_all` found: the good ``rows``, a problem for each bad line
    (``errors``), and what the bad lines name (``bad_lines``): an import checks their files
    and prompts too and lists those problems in the same answer."""

    rows: list[ManifestRow]
    errors: list[str]
    bad_lines: list[BadLine]


def _row(line: int, record: dict[str, Any], errors: list[str], *, from_csv: bool,
         bad_lines: list[BadLine] | None = None) -> ManifestRow | None:
    problems: list[str] = []
    file = _text(record, ("file", "path"), problems)
    prompt = _text(record, ("prompt", "text"), problems)
    raw_prompt_id = record.get("prompt_id")
    raw_seed = record.get("seed")
    if file == "":
        problems.append("no file")
    prompt_id = None
    by_id = raw_prompt_id is not None and raw_prompt_id != ""  # then the text is not used
    if by_id:
        prompt_id = _integer(raw_prompt_id, "prompt_id", problems, from_csv=from_csv)
    elif prompt == "":
        problems.append("no prompt (give a prompt or prompt_id column)")
    seed = None
    if raw_seed is None or (isinstance(raw_seed, str) and not raw_seed.strip()):
        problems.append("no seed")
    else:
        seed = _integer(raw_seed, "seed", problems, from_csv=from_csv)
    if seed is not None:
        try:
            seeds_check([seed])
        except EvalHubError as exc:
            problems.append(exc.message)
    metadata = {k: v for k, v in record.items() if k not in _KNOWN and v not in ("", None)}
    if contains_nul(metadata):
        problems.append("a value contains a NUL byte, which the database cannot store")
    if problems:
        errors.append(f"manifest line {line}: {'; '.join(problems)}")
        if bad_lines is not None:
            bad_lines.append(BadLine(line, file or "", "" if by_id else prompt or "",
                                     prompt_id))
        return None
    return ManifestRow(line, file or "", prompt or "", prompt_id, seed or 0, metadata)


def manifest_read(data: bytes, *, name: str) -> tuple[list[ManifestRow], list[str]]:
    """The manifest's good rows and a problem for each bad line, every line read
    (:func:`manifest_read_all` also gives the files and prompts the bad lines name)."""
    found = manifest_read_all(data, name=name)
    return found.rows, found.errors


def manifest_read_all(data: bytes, *, name: str) -> ManifestRead:
    """The manifest's good rows, a problem for each bad line and the files and prompts the bad
    lines name, every line read.

    Raises :class:`ImportRejected` only when the file as a whole cannot be read (not UTF-8, no
    usable header, not .csv or .jsonl), so that a caller may report the bad lines together with
    the problems of every file the manifest names.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected(f"{name} is not UTF-8 text.") from exc
    errors: list[str] = []
    rows: list[ManifestRow] = []
    bad_lines: list[BadLine] = []
    if name.lower().endswith(".csv"):
        fieldnames, records = read_csv(text, errors, label="manifest line")
        if not fieldnames and errors:
            raise ImportRejected(f"{name}: the header cannot be read.", details=errors)
        if "seed" not in fieldnames:
            raise ImportRejected(
                f"{name}: the header must name the columns file, prompt (or prompt_id) and seed; "
                f"found {fieldnames or 'no header'}."
            )
        for line, record in records:
            if (row := _row(line, record, errors, from_csv=True,
                            bad_lines=bad_lines)) is not None:
                rows.append(row)
    elif name.lower().endswith((".jsonl", ".ndjson")):
        for number, record in iter_jsonl(text, errors, label="manifest line"):
            if not isinstance(record, dict):
                errors.append(f"manifest line {number}: expected a JSON object")
                continue
            if (row := _row(number, record, errors, from_csv=False,
                            bad_lines=bad_lines)) is not None:
                rows.append(row)
    else:
        raise ImportRejected(f"{name}: a manifest must be .csv or .jsonl.")
    return ManifestRead(rows, errors, bad_lines)


def parse_manifest(data: bytes, *, name: str) -> list[ManifestRow]:
    """The manifest's rows, or :class:`ImportRejected` listing every bad line."""
    rows, errors = manifest_read(data, name=name)
    if errors:
        raise ImportRejected("The manifest has errors; nothing was imported.", details=errors)
    if not rows:
        raise ImportRejected(f"{name} lists no images.")
    return rows


def manifest_find(names: Iterable[str]) -> str:
    """The manifest among a folder's or zip's top-level names: exactly one of
    :data:`MANIFEST_NAMES`, since with both it is not clear which one lists the import."""
    present = set(names)
    found = [name for name in MANIFEST_NAMES if name in present]
    if not found:
        raise ImportRejected(
            "No manifest given and none found in the folder or zip "
            f"(expected {' or '.join(MANIFEST_NAMES)} at its top level)."
        )
    if len(found) > 1:
        raise ImportRejected(
            f"The folder or zip holds both {' and '.join(found)}; it is not clear which one "
            "lists the import. Keep one, or give the manifest separately.",
            details=[f"manifest: {name}" for name in found],
        )
    return found[0]
