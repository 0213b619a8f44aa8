"""Parse an image manifest (CSV or JSONL rows of file, prompt, seed) into rows, or fail listing
every bad line."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from evalhub.core.errors import ImportRejected
from evalhub.core.jsonl import iter_jsonl

MANIFEST_NAMES = ("manifest.csv", "manifest.jsonl")


@dataclass(frozen=True)
class ManifestRow:
    line: int
    file: str
    prompt: str  # prompt text; empty when prompt_id is given
    prompt_id: int | None
    seed: int
    metadata: dict[str, Any]


def _row(line: int, record: dict[str, Any], errors: list[str]) -> ManifestRow | None:
    file = str(record.get("file") or record.get("path") or "").strip()
    prompt = str(record.get("prompt") or record.get("text") or "").strip()
    raw_prompt_id = record.get("prompt_id")
    raw_seed = record.get("seed")
    problems = []
    if not file:
        problems.append("no file")
    prompt_id = None
    if raw_prompt_id not in (None, ""):
        try:
            prompt_id = int(raw_prompt_id)
        except (TypeError, ValueError):
            problems.append(f"prompt_id {raw_prompt_id!r} is not an integer")
    elif not prompt:
        problems.append("no prompt (give a prompt or prompt_id column)")
    seed = 0
    if raw_seed in (None, ""):
        problems.append("no seed")
    else:
        try:
            seed = int(str(raw_seed).strip())
        except ValueError:
            problems.append(f"seed {raw_seed!r} is not an integer")
    if problems:
        errors.append(f"manifest line {line}: {'; '.join(problems)}")
        return None
    known = {"file", "path", "prompt", "text", "prompt_id", "seed"}
    metadata = {k: v for k, v in record.items() if k not in known and v not in ("", None)}
    return ManifestRow(line, file, prompt, prompt_id, seed, metadata)


def parse_manifest(data: bytes, *, name: str) -> list[ManifestRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected(f"{name} is not UTF-8 text.") from exc
    errors: list[str] = []
    rows: list[ManifestRow] = []
    if name.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "seed" not in reader.fieldnames:
            raise ImportRejected(
                f"{name}: the header must name the columns file, prompt (or prompt_id) and seed; "
                f"found {reader.fieldnames or 'no header'}."
            )
        for record in reader:
            if None in record:
                errors.append(f"manifest line {reader.line_num}: more values than columns")
                continue
            if (row := _row(reader.line_num, record, errors)) is not None:
                rows.append(row)
    elif name.lower().endswith((".jsonl", ".ndjson")):
        for number, record in iter_jsonl(text, errors, label="manifest line"):
            if not isinstance(record, dict):
                errors.append(f"manifest line {number}: expected a JSON object")
                continue
            if (row := _row(number, record, errors)) is not None:
                rows.append(row)
    else:
        raise ImportRejected(f"{name}: a manifest must be .csv or .jsonl.")
    if errors:
        raise ImportRejected("The manifest has errors; nothing was imported.", details=errors)
    if not rows:
        raise ImportRejected(f"{name} lists no images.")
    return rows
