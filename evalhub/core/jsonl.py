"""Reading JSON Lines input with every bad line reported, not only the first."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from typing import Any


def text_lines(text: str) -> list[str]:
    """The lines of a text file: split on ``"\\n"`` only, a trailing ``"\\r"`` dropped.

    Not ``str.splitlines()``, which also splits on U+2028, U+2029, U+0085, form feeds...: JSON
    strings written raw (``ensure_ascii=False``) may hold those, and line numbers would no
    longer be those an editor shows."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def iter_jsonl(text: str, errors: list[str], *, label: str = "line") -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, decoded value)`` for each non-blank line.

    Undecodable lines are reported into ``errors`` as ``"<label> N: invalid JSON (...)"`` and
    skipped, so a caller can collect every problem of a file before refusing it. Strict JSON:
    ``NaN``, ``Infinity`` and numbers past a float's range are refused (no database stores them
    as JSON), and so are integers past Python's digit limit and nesting past its recursion
    limit (errors Python raises instead of ``JSONDecodeError``).
    """
    for number, raw in enumerate(text_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            errors.append(f"{label} {number}: invalid JSON ({exc.msg})")
            continue
        except ValueError as exc:
            problem = str(exc)
            if "integer string conversion" in problem:
                problem = f"an integer has more than {sys.get_int_max_str_digits()} digits"
            errors.append(f"{label} {number}: invalid JSON ({problem})")
            continue
        except RecursionError:
            errors.append(f"{label} {number}: invalid JSON (nested too deeply)")
            continue
        yield number, value
