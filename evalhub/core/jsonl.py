"""Reading JSON Lines input with every bad line reported, not only the first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def iter_jsonl(text: str, errors: list[str], *, label: str = "line") -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, decoded value)`` for each non-blank line.

    Undecodable lines are reported into ``errors`` as ``"<label> N: invalid JSON (...)"`` and
    skipped, so a caller can collect every problem of a file before refusing it.
    """
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(f"{label} {number}: invalid JSON ({exc.msg})")
