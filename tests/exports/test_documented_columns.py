"""docs/exports.md lists every key and column of the files, in the files' order.

The tables under "Columns" are read from the document (the names in backquotes in each row's
first cell, in order) and compared with what an export actually writes: a DPO line's keys,
the Parquet files' columns and the CSV's header.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.exports.helpers import export

DOC = Path(__file__).resolve().parents[2] / "docs" / "exports.md"


def _rows(heading: str) -> list[tuple[str, str]]:
    """(first cell, second cell) of each row of the first table under ``### <heading>``."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"\n### {heading}\n", 1)[1].split("\n#", 1)[0]
    rows = [tuple(line.split("|")[1:3]) for line in section.splitlines()
            if line.startswith("| `")]
    assert rows, f"no table under {heading!r}"
    return rows


def documented_names(heading: str) -> list[str]:
    """The names a table documents, in order: those in backquotes in each row's first cell."""
    return [name for cell, _ in _rows(heading) for name in re.findall(r"`([^`]+)`", cell)]


def documented(heading: str) -> list[tuple[str, str]]:
    """(name, Arrow type) of each column a table documents, in order: a row's type cell gives
    one type for all its names or one each (a note in parentheses aside)."""
    found = []
    for names_cell, type_cell in _rows(heading):
        names = re.findall(r"`([^`]+)`", names_cell)
        types = re.findall(r"timestamp\[[^\]]*\]|[a-z0-9]+", re.sub(r"\(.*?\)", "", type_cell))
        found += zip(names, types * len(names) if len(types) == 1 else types, strict=True)
    return found


def arrow_types(schema) -> list[tuple[str, str]]:
    """(name, type) as the documents spell types: float64, timestamp[us, UTC]."""
    return [(field.name, str(field.type).replace("tz=", "").replace("double", "float64"))
            for field in schema]


@pytest.fixture
def voted(world):
    world.vote(world.tasks[0], world.annotators[0], "a")
    world.vote(world.tasks[1], world.annotators[1], "b", criterion="aesthetics")
    return world


def test_the_dpo_keys_are_documented_in_the_files_order(voted, tmp_path):
    path, _ = export(voted, tmp_path, "dpo-jsonl")
    line = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert documented_names("dpo-jsonl") == list(line)


def test_the_pickapic_columns_are_documented_in_the_files_order(voted, tmp_path):
    path, _ = export(voted, tmp_path, "pickapic-parquet")
    assert documented("pickapic-parquet") == arrow_types(pq.read_schema(path))


def test_the_raw_columns_are_documented_in_the_files_order(voted, tmp_path):
    parquet, _ = export(voted, tmp_path, "raw-parquet")
    assert documented("raw-csv / raw-parquet") == arrow_types(pq.read_schema(parquet))
    csv, _ = export(voted, tmp_path, "raw-csv")
    assert documented_names("raw-csv / raw-parquet") == pacsv.read_csv(csv).column_names
