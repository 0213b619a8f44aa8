"""The columns of a judgment batch: the one definition both row sources read.

Every export reads the same columns, either through the ORM (``values_list``, the portable
path) or, on PostgreSQL, through ``COPY (SELECT ...) TO STDOUT`` (the fast path). Both build
their SELECT from ``COLUMNS`` and both produce record batches of ``BATCH_SCHEMA``, so the two
paths cannot drift apart. Columns with a ``lookup`` come from a small related table (prompts,
images): the fast path reads that table once and joins it in Arrow instead of sending the
same long strings with every judgment.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Lookup:
    """A column read from the task's related object ``relation`` (a path from the task)."""

    key: str  # batch column holding the related object's id
    relation: str  # ORM path from ComparisonTask, e.g. "image_a"
    field: str  # ORM path from the related object, e.g. "blob__sha256"


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    path: str = ""  # ORM path from Judgment (for lookups it is derived)
    lookup: Lookup | None = None

    @property
    def orm_path(self) -> str:
        if self.lookup is not None:
            return f"task__{self.lookup.relation}__{self.lookup.field}"
        return self.path


def _lookup(name: str, key: str, relation: str, field: str) -> Column:
    return Column(name, pa.string(), lookup=Lookup(key, relation, field))


COLUMNS: tuple[Column, ...] = (
    Column("judgment_id", pa.int64(), "id"),
    Column("task_id", pa.int64(), "task_id"),
    Column("criterion", pa.string(), "criterion"),
    Column("outcome", pa.string(), "outcome"),
    Column("judge_kind", pa.string(), "judge_kind"),
    Column("metric_name", pa.string(), "metric_name"),
    Column("metric_calibrated", pa.bool_(), "metric_calibrated"),
    Column("annotator_id", pa.int64(), "annotator_id"),
    Column("a_side", pa.string(), "a_side"),
    Column("latency_ms", pa.int64(), "latency_ms"),
    Column("client_id", pa.string(), "client_id"),  # UUID as text
    Column("created_at", TS, "created_at"),
    Column("is_gold", pa.bool_(), "task__is_gold"),
    Column("gold_answer", pa.string(), "task__gold_answer"),
    Column("prompt_id", pa.int64(), "task__prompt_id"),
    _lookup("prompt", "prompt_id", "prompt", "text"),
    _lookup("prompt_category", "prompt_id", "prompt", "category"),
    Column("image_a_id", pa.int64(), "task__image_a_id"),
    Column("image_b_id", pa.int64(), "task__image_b_id"),
    _lookup("image_a_sha256", "image_a_id", "image_a", "blob__sha256"),
    _lookup("image_b_sha256", "image_b_id", "image_b", "blob__sha256"),
    _lookup("image_a_file", "image_a_id", "image_a", "blob__file"),
    _lookup("image_b_file", "image_b_id", "image_b", "blob__file"),
    # A video output's file (its Image row's blob is then the poster frame); null for images.
    _lookup("video_a_sha256", "image_a_id", "image_a", "video__sha256"),
    _lookup("video_b_sha256", "image_b_id", "image_b", "video__sha256"),
    _lookup("video_a_file", "image_a_id", "image_a", "video__file"),
    _lookup("video_b_file", "image_b_id", "image_b", "video__file"),
    Column("run_a_id", pa.int64(), "task__run_a_id"),
    Column("run_b_id", pa.int64(), "task__run_b_id"),
)
NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
# Columns only the raw formats write. The preference formats' batches may leave them null,
# so the fast path does not read them (a third of the bytes PostgreSQL formats per row).
RAW_ONLY: tuple[str, ...] = ("latency_ms", "client_id", "is_gold", "gold_answer")
# Added by the selectors: votes behind the row, and the pair's agreement (or null); then what
# marks a pair expanded from a best-of-K vote (exports/screens.py): K of its screen and the pick
# that stated it (null for a pairwise vote), and its weight (1 for a pairwise vote).
EXTRA = (Column("votes", pa.int64()), Column("agreement", pa.float64()),
         Column("screen_k", pa.int64()), Column("screen_stage", pa.int64()),
         Column("weight", pa.float64()))
SCREEN = EXTRA[2:]
BATCH_SCHEMA = pa.schema([(c.name, c.type) for c in (*COLUMNS, *EXTRA)])
ROW_SCHEMA = pa.schema([(c.name, c.type) for c in COLUMNS])
