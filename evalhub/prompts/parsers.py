"""Parse prompt files (CSV, JSONL, plain text) into rows, collecting every error with its line.

Pure functions: no database (the Prompt model is read only for its column widths). The service
decides what to do with the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalhub.core.csv_records import contains_nul, read_csv
from evalhub.core.errors import ImportRejected
from evalhub.core.jsonl import iter_jsonl, text_lines
from evalhub.core.limits import json_problem
from evalhub.prompts.models import Prompt

FORMATS = ("csv", "jsonl", "txt")
TEXT_KEYS = ("text", "prompt", "caption")
MAX_PROMPT_CHARS = 10_000
#: The longest category the database column takes.
MAX_CATEGORY_CHARS = Prompt._meta.get_field("category").max_length
#: Columns naming an editing prompt's source file; the file's extension says image or video.
SOURCE_KEYS = ("source_image", "source_video")


@dataclass(frozen=True)
class PromptRow:
    line: int
    text: str
    category: str = ""
    tags: tuple[str, ...] = ()
    #: The source file's name in the image folder or zip (column ``source_image`` or
    #: ``source_video``): an image, or a video by its extension (blobs/video_validation.py).
    source_image: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def detect_format(filename: str) -> str:
    lowered = filename.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lowered.endswith(".txt"):
        return "txt"
    raise ImportRejected(
        f"Cannot tell the format of {filename!r} from its extension; "
        f"name it .csv, .jsonl or .txt, or pass the format ({', '.join(FORMATS)})."
    )


def _split_tags(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(t.strip() for t in str(value).replace(";", ",").split(",") if t.strip())


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected(f"The file is not UTF-8 text (byte {exc.start}).") from exc


def _row_from_mapping(line: int, record: dict[str, Any], errors: list[str]) -> PromptRow | None:
    text_key = next((k for k in TEXT_KEYS if k in record), None)
    if text_key is None:
        expected = " or ".join(TEXT_KEYS)
        errors.append(f"line {line}: no prompt text (expected a column named {expected})")
        return None
    value = record[text_key]
    if value is not None and not isinstance(value, str):
        # A JSON number, list or object: its Python repr ("['a', 'b']") is not a prompt.
        errors.append(f"line {line}: prompt text is {type(value).__name__}, not text")
        return None
    text = (value or "").strip()
    if not text:
        errors.append(f"line {line}: prompt text is empty")
        return None
    if len(text) > MAX_PROMPT_CHARS:
        errors.append(f"line {line}: prompt is longer than {MAX_PROMPT_CHARS} characters")
        return None
    if "\x00" in text:
        errors.append(f"line {line}: prompt text contains a NUL byte")
        return None
    known = {*TEXT_KEYS, "category", "tags", *SOURCE_KEYS}
    metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    extra = {k: v for k, v in record.items() if k not in known and k != "metadata" and v != ""}
    sources = {str(record.get(k) or "").strip() for k in SOURCE_KEYS} - {""}
    if len(sources) > 1:
        errors.append(f"line {line}: source_image and source_video name different files; a "
                      "prompt has one source")
        return None
    category = str(record.get("category") or "").strip()
    if len(category) > MAX_CATEGORY_CHARS:
        errors.append(f"line {line}: category is longer than {MAX_CATEGORY_CHARS} characters")
        return None
    row = PromptRow(
        line=line,
        text=text,
        category=category,
        tags=_split_tags(record.get("tags")),
        source_image=sources.pop() if sources else "",
        metadata={**extra, **metadata},
    )
    if contains_nul([row.category, row.tags, row.metadata]):
        errors.append(f"line {line}: a category, tag or other value contains a NUL byte, which "
                      "the database cannot store")
        return None
    # A lone surrogate (JSON "\\ud83d", half of an emoji) has no UTF-8 form to store.
    problem = json_problem(record)
    if problem:
        errors.append(f"line {line}: {problem}")
        return None
    return row


def _parse_csv(text: str, errors: list[str]) -> list[PromptRow]:
    _, records = read_csv(text, errors)
    rows = []
    for line, record in records:
        row = _row_from_mapping(line, record, errors)
        if row is not None:
            rows.append(row)
    return rows


def _parse_jsonl(text: str, errors: list[str]) -> list[PromptRow]:
    rows = []
    for number, record in iter_jsonl(text, errors):
        if isinstance(record, str):
            record = {"text": record}
        if not isinstance(record, dict):
            errors.append(f"line {number}: expected a JSON object or string")
            continue
        row = _row_from_mapping(number, record, errors)
        if row is not None:
            rows.append(row)
    return rows


def _parse_txt(text: str, errors: list[str]) -> list[PromptRow]:
    rows = [_row_from_mapping(n, {"text": line}, errors)
            for n, line in enumerate(text_lines(text), start=1) if line.strip()]
    return [row for row in rows if row is not None]


def parse_prompts(data: bytes, *, fmt: str) -> list[PromptRow]:
    """Parse a whole prompt file or raise :class:`ImportRejected` listing every bad line."""
    if fmt not in FORMATS:
        raise ImportRejected(f"Unknown prompt file format {fmt!r}; expected one of {FORMATS}.")
    text = _decode(data)
    errors: list[str] = []
    if fmt == "csv":
        rows = _parse_csv(text, errors)
    elif fmt == "jsonl":
        rows = _parse_jsonl(text, errors)
    else:
        rows = _parse_txt(text, errors)
    seen: dict[str, int] = {}
    for row in rows:
        if row.text in seen:
            errors.append(f"line {row.line}: duplicate of the prompt on line {seen[row.text]}")
        else:
            seen[row.text] = row.line
    if errors:
        raise ImportRejected("The prompt file has errors; nothing was imported.", details=errors)
    if not rows:
        raise ImportRejected("The prompt file contains no prompts.")
    return rows
