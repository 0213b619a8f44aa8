"""Column batches -> rows of each export format (schemas, label semantics, writers).

Image A / image B are the campaign's canonical images (A is the image of ``task.run_a``);
``a_side`` says where A was displayed, and outcomes are stored relative to A, so labels
never depend on the displayed side.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from json.encoder import encode_basestring as _json_str
from pathlib import PurePosixPath
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from django.core.files.storage import default_storage

from evalhub.campaigns.models import Outcome
from evalhub.exports.options import (
    DPO_JSONL,
    PICKAPIC_PARQUET,
    RAW_CSV,
    RAW_PARQUET,
    ExportOptions,
    pseudonym,
)
from evalhub.exports.selectors import Batch, RunInfo

TS = pa.timestamp("us", tz="UTC")

RAW_SCHEMA = pa.schema([
    ("judgment_id", pa.int64()), ("campaign_id", pa.int64()), ("task_id", pa.int64()),
    ("criterion", pa.string()), ("outcome", pa.string()), ("judge", pa.string()),
    ("metric_name", pa.string()), ("annotator", pa.string()), ("is_gold", pa.bool_()),
    ("gold_answer", pa.string()), ("prompt_id", pa.int64()), ("prompt", pa.string()),
    ("prompt_category", pa.string()),
    ("image_a_id", pa.int64()), ("image_a_sha256", pa.string()),
    ("image_b_id", pa.int64()), ("image_b_sha256", pa.string()),
    ("run_a_id", pa.int64()), ("run_a", pa.string()), ("model_a", pa.string()),
    ("run_b_id", pa.int64()), ("run_b", pa.string()), ("model_b", pa.string()),
    ("a_side", pa.string()), ("latency_ms", pa.int64()), ("client_id", pa.string()),
    ("created_at", TS),
])


def pickapic_schema(*, image_bytes: bool) -> pa.Schema:
    image = pa.binary() if image_bytes else pa.string()
    return pa.schema([
        ("ranking_id", pa.int64()), ("campaign_id", pa.int64()), ("task_id", pa.int64()),
        ("criterion", pa.string()), ("caption", pa.string()), ("prompt_category", pa.string()),
        ("jpg_0", image), ("jpg_1", image),
        ("label_0", pa.float64()), ("label_1", pa.float64()),
        ("outcome", pa.string()), ("has_label", pa.bool_()), ("are_different", pa.bool_()),
        ("best_image_uid", pa.string()),
        ("image_0_uid", pa.string()), ("image_1_uid", pa.string()),
        ("image_0_url", pa.string()), ("image_1_url", pa.string()),
        ("image_0_side", pa.string()),
        ("model_0", pa.string()), ("model_1", pa.string()),
        ("run_0_id", pa.int64()), ("run_1_id", pa.int64()),
        ("run_0", pa.string()), ("run_1", pa.string()),
        ("user_id", pa.string()), ("judge", pa.string()), ("metric_name", pa.string()),
        ("votes", pa.int64()), ("agreement", pa.float64()), ("created_at", TS),
    ])


DPO_KEYS = (
    "prompt", "chosen", "rejected", "chosen_sha256", "rejected_sha256",
    "chosen_model", "rejected_model", "chosen_run_id", "rejected_run_id", "chosen_run",
    "rejected_run", "chosen_side", "campaign_id", "task_id", "criterion", "prompt_category",
    "judge", "metric_name", "annotator", "votes", "agreement", "judgment_id", "created_at",
)

# label_0 / label_1 (image 0 is image A) per canonical outcome.
LABELS = {Outcome.A: (1.0, 0.0), Outcome.B: (0.0, 1.0), Outcome.TIE: (0.5, 0.5),
          Outcome.BOTH_BAD: (0.5, 0.5)}


def timestamps(micros: list) -> pa.Array:
    """Microseconds since the epoch -> timestamp[us, UTC]."""
    return pa.array(micros, pa.int64()).cast(TS)


def iso_timestamps(micros: list) -> list:
    """Microseconds since the epoch -> "2025-01-31T12:00:05.123456Z"."""
    return pc.strftime(timestamps(micros), format="%Y-%m-%dT%H:%M:%SZ").to_pylist()


def _blank(values: list) -> list:
    """'' -> None (Django stores absent strings as '')."""
    return [value or None for value in values]


class RowContext:
    """What turns ids into names, pseudonyms, image references and image bytes."""

    IMAGE_CACHE_BYTES = 64 * 1024 * 1024

    def __init__(self, *, campaign_id: int, options: ExportOptions, runs: dict[int, RunInfo],
                 usernames: dict[int, str] | None) -> None:
        self.campaign_id = campaign_id
        self.options = options
        self.runs = runs
        self.usernames = usernames
        self.referenced: dict[str, str] = {}  # sha256 -> storage name, for the bundle
        self._names: dict[int, str] = {}
        self._refs: dict[str, str] = {}
        self._bytes: dict[str, bytes] = {}
        self._bytes_total = 0
        self.annotators: set[int] = set()

    def annotator(self, ids: list) -> list:
        self.annotators.update(ids)
        names = self._names
        for aid in set(ids) - names.keys():
            if aid is None:
                continue
            if self.usernames is not None:
                names[aid] = self.usernames.get(aid, str(aid))
            else:
                names[aid] = pseudonym(campaign_id=self.campaign_id, user_id=aid)
        return [None if aid is None else names[aid] for aid in ids]

    def relative_path(self, sha: str, file_name: str) -> str:
        """``images/<sha256><suffix of the stored file>``, e.g. images/ab12...ef.png."""
        suffix = PurePosixPath(file_name).suffix.lower() or ".img"
        return f"images/{sha}{suffix}"

    def refs(self, shas: list, files: list) -> list[str]:
        """Image references: bundle-relative paths, or absolute URLs under ``base_url``."""
        cache = self._refs
        out = []
        for sha, file_name in zip(shas, files, strict=True):
            ref = cache.get(sha)
            if ref is None:
                ref = self.relative_path(sha, file_name)
                if self.options.base_url:
                    ref = f"{self.options.base_url.rstrip('/')}/{ref}"
                cache[sha] = ref
                self.referenced[sha] = file_name
            out.append(ref)
        return out

    def image_bytes(self, sha: str, file_name: str) -> bytes:
        data = self._bytes.get(sha)
        if data is None:
            with default_storage.open(file_name, "rb") as handle:
                data = handle.read()
            if self._bytes_total + len(data) > self.IMAGE_CACHE_BYTES:
                self._bytes.clear()
                self._bytes_total = 0
            self._bytes[sha] = data
            self._bytes_total += len(data)
        return data

    def run_columns(self, ids: list) -> tuple[list, list]:
        runs = self.runs
        infos = [runs.get(rid) for rid in ids]
        return ([i.name if i else None for i in infos], [i.model if i else None for i in infos])


def raw_batch(batch: Batch, ctx: RowContext) -> pa.RecordBatch:
    n = len(batch["judgment_id"])
    run_a, model_a = ctx.run_columns(batch["run_a_id"])
    run_b, model_b = ctx.run_columns(batch["run_b_id"])
    columns = {
        "judgment_id": batch["judgment_id"], "campaign_id": [ctx.campaign_id] * n,
        "task_id": batch["task_id"], "criterion": batch["criterion"],
        "outcome": batch["outcome"], "judge": batch["judge_kind"],
        "metric_name": _blank(batch["metric_name"]),
        "annotator": ctx.annotator(batch["annotator_id"]), "is_gold": batch["is_gold"],
        "gold_answer": _blank(batch["gold_answer"]), "prompt_id": batch["prompt_id"],
        "prompt": batch["prompt"], "prompt_category": batch["prompt_category"],
        "image_a_id": batch["image_a_id"], "image_a_sha256": batch["image_a_sha256"],
        "image_b_id": batch["image_b_id"], "image_b_sha256": batch["image_b_sha256"],
        "run_a_id": batch["run_a_id"], "run_a": run_a, "model_a": model_a,
        "run_b_id": batch["run_b_id"], "run_b": run_b, "model_b": model_b,
        "a_side": _blank(batch["a_side"]), "latency_ms": batch["latency_ms"],
        "client_id": batch["client_id"], "created_at": timestamps(batch["created_at"]),
    }
    if ctx.options.bundle:
        ctx.refs(batch["image_a_sha256"], batch["image_a_file"])
        ctx.refs(batch["image_b_sha256"], batch["image_b_file"])
    return pa.RecordBatch.from_pydict(columns, schema=RAW_SCHEMA)


def _side_of_a_to(sides: list, flip: list) -> list:
    """Where the given image was displayed: A's side, or the other side where ``flip``."""
    other = {"left": "right", "right": "left"}
    return [None if not side else (other[side] if f else side)
            for side, f in zip(sides, flip, strict=True)]


def pickapic_batch(batch: Batch, ctx: RowContext) -> pa.RecordBatch:
    n = len(batch["task_id"])
    outcomes = batch["outcome"]
    labels = [LABELS[o] for o in outcomes]
    sha_0, sha_1 = batch["image_a_sha256"], batch["image_b_sha256"]
    url_0 = ctx.refs(sha_0, batch["image_a_file"])
    url_1 = ctx.refs(sha_1, batch["image_b_file"])
    if ctx.options.image_bytes:
        jpg_0 = [ctx.image_bytes(s, f) for s, f in zip(sha_0, batch["image_a_file"], strict=True)]
        jpg_1 = [ctx.image_bytes(s, f) for s, f in zip(sha_1, batch["image_b_file"], strict=True)]
    else:
        jpg_0, jpg_1 = url_0, url_1
    run_0, model_0 = ctx.run_columns(batch["run_a_id"])
    run_1, model_1 = ctx.run_columns(batch["run_b_id"])
    best = [a if o == Outcome.A else b if o == Outcome.B else None
            for o, a, b in zip(outcomes, sha_0, sha_1, strict=True)]
    columns = {
        "ranking_id": batch["judgment_id"], "campaign_id": [ctx.campaign_id] * n,
        "task_id": batch["task_id"], "criterion": batch["criterion"],
        "caption": batch["prompt"], "prompt_category": batch["prompt_category"],
        "jpg_0": jpg_0, "jpg_1": jpg_1,
        "label_0": [pair[0] for pair in labels], "label_1": [pair[1] for pair in labels],
        "outcome": outcomes, "has_label": [True] * n,
        "are_different": [a != b for a, b in zip(sha_0, sha_1, strict=True)],
        "best_image_uid": best, "image_0_uid": sha_0, "image_1_uid": sha_1,
        "image_0_url": url_0, "image_1_url": url_1,
        "image_0_side": _blank(batch["a_side"]),
        "model_0": model_0, "model_1": model_1,
        "run_0_id": batch["run_a_id"], "run_1_id": batch["run_b_id"],
        "run_0": run_0, "run_1": run_1,
        "user_id": ctx.annotator(batch["annotator_id"]), "judge": batch["judge_kind"],
        "metric_name": _blank(batch["metric_name"]), "votes": batch["votes"],
        "agreement": batch["agreement"], "created_at": timestamps(batch["created_at"]),
    }
    schema = pickapic_schema(image_bytes=ctx.options.image_bytes)
    return pa.RecordBatch.from_pydict(columns, schema=schema)


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return _json_str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return '"' + value.isoformat() + '"'
    return json.dumps(value)


def _json_column(values: list) -> list[str]:
    """JSON text of every value, each distinct value encoded once."""
    cache: dict = {}
    out = []
    append = out.append
    for value in values:
        text = cache.get(value)
        if text is None:
            text = cache[value] = _json_value(value)
        append(text)
    return out


_DPO_LINE = "{" + ",".join(f'"{key}":%s' for key in DPO_KEYS) + "}\n"


def dpo_lines(batch: Batch, ctx: RowContext) -> str:
    """JSONL text of a batch (ties and both-bad are never in a DPO batch)."""
    outcomes = batch["outcome"]
    a_won = [o == Outcome.A for o in outcomes]
    if any(o not in (Outcome.A, Outcome.B) for o in outcomes):
        raise ValueError("DPO rows need a winner")  # excluded by the queryset; a bug if seen

    def pick(col_a: list, col_b: list, winner: bool) -> list:
        return [(a if w else b) if winner else (b if w else a)
                for a, b, w in zip(col_a, col_b, a_won, strict=True)]

    ref_a = ctx.refs(batch["image_a_sha256"], batch["image_a_file"])
    ref_b = ctx.refs(batch["image_b_sha256"], batch["image_b_file"])
    run_a, model_a = ctx.run_columns(batch["run_a_id"])
    run_b, model_b = ctx.run_columns(batch["run_b_id"])
    sha_a, sha_b = batch["image_a_sha256"], batch["image_b_sha256"]
    n = len(outcomes)
    # The chosen image was shown on A's side when A won, else on the other side.
    chosen_side = _side_of_a_to(batch["a_side"], [not w for w in a_won])
    values = {
        "prompt": batch["prompt"],
        "chosen": pick(ref_a, ref_b, True), "rejected": pick(ref_a, ref_b, False),
        "chosen_sha256": pick(sha_a, sha_b, True), "rejected_sha256": pick(sha_a, sha_b, False),
        "chosen_model": pick(model_a, model_b, True),
        "rejected_model": pick(model_a, model_b, False),
        "chosen_run_id": pick(batch["run_a_id"], batch["run_b_id"], True),
        "rejected_run_id": pick(batch["run_a_id"], batch["run_b_id"], False),
        "chosen_run": pick(run_a, run_b, True), "rejected_run": pick(run_a, run_b, False),
        "chosen_side": chosen_side, "campaign_id": [ctx.campaign_id] * n,
        "task_id": batch["task_id"], "criterion": batch["criterion"],
        "prompt_category": batch["prompt_category"], "judge": batch["judge_kind"],
        "metric_name": _blank(batch["metric_name"]),
        "annotator": ctx.annotator(batch["annotator_id"]), "votes": batch["votes"],
        "agreement": batch["agreement"], "judgment_id": batch["judgment_id"],
        "created_at": iso_timestamps(batch["created_at"]),
    }
    encoded = [_json_column(values[key]) for key in DPO_KEYS]
    line = _DPO_LINE
    return "".join([line % row for row in zip(*encoded, strict=True)])


class FormatWriter:
    """Writes batches of one format to a binary file object, then finishes it."""

    def __init__(self, sink: IO[bytes], *, options: ExportOptions) -> None:
        self.sink = sink
        self.options = options
        self.rows = 0
        fmt = options.format
        self._writer: Any = None
        if fmt == RAW_PARQUET:
            self.schema = RAW_SCHEMA
        elif fmt == PICKAPIC_PARQUET:
            self.schema = pickapic_schema(image_bytes=options.image_bytes)
        elif fmt == RAW_CSV:
            self.schema = RAW_SCHEMA
        else:
            self.schema = None
        if fmt in (RAW_PARQUET, PICKAPIC_PARQUET):
            self._writer = pq.ParquetWriter(sink, self.schema, compression="zstd")
        elif fmt == RAW_CSV:
            self._writer = pacsv.CSVWriter(sink, self.schema)
        self._build: Callable[[Batch, RowContext], Any] = {
            RAW_PARQUET: raw_batch, RAW_CSV: raw_batch, PICKAPIC_PARQUET: pickapic_batch,
            DPO_JSONL: dpo_lines,
        }[fmt]

    def write(self, batch: Batch, ctx: RowContext) -> int:
        built = self._build(batch, ctx)
        if isinstance(built, str):
            self.sink.write(built.encode())
            count = len(batch["task_id"])
        else:
            self._writer.write_batch(built)
            count = built.num_rows
        self.rows += count
        return count

    def close(self) -> None:
        if self._writer is not None:
            if self.rows == 0 and self.options.format == RAW_CSV:
                self._writer.write_batch(RAW_SCHEMA.empty_table().to_batches()[0]
                                         if RAW_SCHEMA.empty_table().num_rows else
                                         pa.RecordBatch.from_pylist([], schema=RAW_SCHEMA))
            self._writer.close()


__all__ = ["DPO_KEYS", "RAW_SCHEMA", "FormatWriter", "RowContext", "pickapic_schema"]
