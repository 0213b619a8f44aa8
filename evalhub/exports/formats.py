"""Column batches -> rows of each export format (schemas, label semantics, writers).

Image A / image B are the campaign's canonical images (A is the image of ``task.run_a``);
``a_side`` says where A was displayed, and outcomes are stored relative to A, so labels
never depend on the displayed side.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from django.core.files.storage import default_storage

from evalhub.campaigns.models import Outcome
from evalhub.exports.background import BackgroundWriter
from evalhub.exports.columns import SCREEN, TS
from evalhub.exports.jsonl import json_block
from evalhub.exports.options import (
    DPO_JSONL,
    PICKAPIC_PARQUET,
    RAW_CSV,
    RAW_PARQUET,
    ExportOptions,
    pseudonym,
)
from evalhub.exports.selectors import Batch, RunInfo

RAW_SCHEMA = pa.schema([
    ("judgment_id", pa.int64()), ("campaign_id", pa.int64()), ("task_id", pa.int64()),
    ("criterion", pa.string()), ("outcome", pa.string()), ("judge", pa.string()),
    ("metric_name", pa.string()), ("uncalibrated", pa.bool_()), ("annotator", pa.string()),
    ("annotator_reliability", pa.float64()), ("is_gold", pa.bool_()),
    ("gold_answer", pa.string()), ("prompt_id", pa.int64()), ("prompt", pa.string()),
    ("prompt_category", pa.string()),
    ("image_a_id", pa.int64()), ("image_a_sha256", pa.string()),
    ("image_b_id", pa.int64()), ("image_b_sha256", pa.string()),
    ("video_a_sha256", pa.string()), ("video_b_sha256", pa.string()),
    ("run_a_id", pa.int64()), ("run_a", pa.string()), ("model_a", pa.string()),
    ("run_b_id", pa.int64()), ("run_b", pa.string()), ("model_b", pa.string()),
    ("a_side", pa.string()), ("latency_ms", pa.int64()), ("client_id", pa.string()),
    ("screen_k", pa.int64()), ("screen_stage", pa.int64()), ("weight", pa.float64()),
    ("created_at", TS),
])

# raw-csv: RAW_SCHEMA with its float columns as text that always has a decimal point. Arrow's
# CSV writer writes a whole float as an integer ("1" for 1.0), so a column whose values
# happened to be whole (weight 1 in a pairwise campaign, reliabilities 0 or 1) read as int64
# in pandas, and as float64 in another campaign. Text cells are quoted ("1.0"), which pandas
# and Arrow's CSV reader still read as numbers.
_CSV_FLOATS = frozenset(f.name for f in RAW_SCHEMA if pa.types.is_floating(f.type))
CSV_SCHEMA = pa.schema([(f.name, pa.string() if f.name in _CSV_FLOATS else f.type)
                        for f in RAW_SCHEMA])


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
        ("video_0", pa.string()), ("video_1", pa.string()),
        ("video_0_uid", pa.string()), ("video_1_uid", pa.string()),
        ("model_0", pa.string()), ("model_1", pa.string()),
        ("run_0_id", pa.int64()), ("run_1_id", pa.int64()),
        ("run_0", pa.string()), ("run_1", pa.string()),
        ("user_id", pa.string()), ("annotator_reliability", pa.float64()),
        ("judge", pa.string()), ("metric_name", pa.string()),
        ("uncalibrated", pa.bool_()), ("votes", pa.int64()), ("agreement", pa.float64()),
        ("screen_k", pa.int64()), ("screen_stage", pa.int64()), ("weight", pa.float64()),
        ("created_at", TS),
    ])


DPO_KEYS = (
    "prompt", "media", "chosen", "rejected", "chosen_sha256", "rejected_sha256",
    "chosen_model", "rejected_model", "chosen_run_id", "rejected_run_id", "chosen_run",
    "rejected_run", "chosen_side", "campaign_id", "task_id", "criterion", "prompt_category",
    "judge", "metric_name", "uncalibrated", "annotator", "annotator_reliability", "votes",
    "agreement", "screen_k", "screen_stage", "weight", "judgment_id",
    "created_at",
)

# label_0 / label_1 (image 0 is image A) per canonical outcome.
LABELS = {Outcome.A: (1.0, 0.0), Outcome.B: (0.0, 1.0), Outcome.TIE: (0.5, 0.5),
          Outcome.BOTH_BAD: (0.5, 0.5)}
_LABEL_KEYS = pa.array([str(outcome) for outcome in LABELS], pa.string())
_LABEL_VALUES = [pa.array([pair[i] for pair in LABELS.values()], pa.float64()) for i in (0, 1)]


def _blank(values: pa.Array) -> pa.Array:
    """'' -> null (Django stores absent strings as '')."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)


def _constant(value: Any, n: int, kind: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, kind), n)


def _map(values: pa.Array, keys: pa.Array, mapped: pa.Array) -> pa.Array:
    """``mapped[i]`` where ``values == keys[i]`` (null where no key matches)."""
    return mapped.take(pc.index_in(values, value_set=keys))


class RowContext:
    """What turns ids into names, pseudonyms, image references and image bytes.

    Work per distinct value (a pseudonym per annotator, a reference per image) is done once
    in Python and spread over the rows by Arrow.
    """

    IMAGE_CACHE_BYTES = 64 * 1024 * 1024

    def __init__(self, *, campaign_id: int, options: ExportOptions, runs: dict[int, RunInfo],
                 usernames: dict[int, str] | None,
                 reliability: dict[int, float] | None = None) -> None:
        self.campaign_id = campaign_id
        # Annotator id -> crowd-BT weight (campaigns/quality/reliability.py), 0-1.
        self.reliability = reliability or {}
        self.options = options
        self.runs = runs
        self.usernames = usernames
        self.referenced: dict[str, str] = {}  # sha256 -> storage name, for the bundle
        self.videos: set[str] = set()  # the referenced sha256 that are videos
        self._names: dict[int, str] = {}
        self._refs: dict[str, str] = {}
        self._bytes: dict[str, bytes] = {}
        self._bytes_total = 0
        self.annotators: set[int] = set()
        self.run_ids = pa.array(list(runs), pa.int64())
        self.run_names = pa.array([info.name for info in runs.values()], pa.string())
        self.run_models = pa.array([info.model for info in runs.values()], pa.string())

    def _name(self, aid: int) -> str:
        if self.usernames is not None:
            return self.usernames.get(aid, str(aid))
        return pseudonym(campaign_id=self.campaign_id, user_id=aid)

    def annotator(self, ids: pa.Array) -> pa.Array:
        return self.annotator_codes(ids).dictionary_decode()

    def annotator_codes(self, ids: pa.Array) -> pa.DictionaryArray:
        """Annotator names (pseudonyms or usernames) as a dictionary over the batch's ids."""
        distinct = pc.unique(ids)
        names = self._names
        found = []
        for aid in distinct.to_pylist():
            self.annotators.add(aid)
            if aid is not None and aid not in names:
                names[aid] = self._name(aid)
            found.append(None if aid is None else names[aid])
        return pa.DictionaryArray.from_arrays(pc.index_in(ids, value_set=distinct),
                                              pa.array(found, pa.string()))

    def annotator_reliability(self, ids: pa.Array) -> pa.Array:
        """Each row's annotator weight (0-1); null for metric judges and rows by pair."""
        distinct = pc.unique(ids)
        values = pa.array([None if aid is None else self.reliability.get(aid)
                           for aid in distinct.to_pylist()], pa.float64())
        return _map(ids, distinct, values)

    def relative_path(self, sha: str, file_name: str) -> str:
        """``images/<sha256><suffix of the stored file>``, e.g. images/ab12...ef.png;
        ``videos/<sha256><suffix>`` for a video file (e.g. videos/cd34...01.mp4)."""
        name = file_name.rstrip("/").rpartition("/")[2]  # PurePosixPath(...).suffix, faster
        dot = name.rfind(".")
        suffix = name[dot:].lower() if 0 < dot < len(name) - 1 else ".img"
        folder = "videos" if sha in self.videos else "images"
        return f"{folder}/{sha}{suffix}"

    def video_refs(self, shas: pa.Array, files: pa.Array) -> pa.Array:
        """References of video files (null stays null: an image output has no video)."""
        self.videos.update(s for s in pc.unique(shas).to_pylist() if s is not None)
        return self.refs_where(pc.is_valid(shas), shas, files)

    def refs_where(self, wanted: pa.Array, shas: pa.Array, files: pa.Array) -> pa.Array:
        """``refs`` of the rows where ``wanted`` is true, null elsewhere: only those files
        are referenced (and bundled)."""
        if pc.all(wanted).as_py() is not False:  # all rows (or none at all)
            return self.refs(shas, files)
        if not pc.any(wanted).as_py():
            return pa.nulls(len(shas), pa.string())
        kept = pc.filter(shas, wanted)
        refs = self.refs(kept, pc.filter(files, wanted))
        # Spread the references back over the rows.
        return pc.if_else(wanted, _map(shas, kept, refs), pa.scalar(None, pa.string()))

    def refs(self, shas: pa.Array, files: pa.Array) -> pa.Array:
        """File references: bundle-relative paths, or absolute URLs under ``base_url``."""
        cache = self._refs
        distinct = pc.unique(shas)
        new = [sha for sha in distinct.to_pylist() if sha not in cache]
        if new:
            first = pc.index_in(pa.array(new, pa.string()), value_set=shas)
            for sha, file_name in zip(new, files.take(first).to_pylist(), strict=True):
                ref = self.relative_path(sha, file_name)
                if self.options.base_url:
                    ref = f"{self.options.base_url.rstrip('/')}/{ref}"
                cache[sha] = ref
                self.referenced[sha] = file_name
        return _map(shas, distinct, pa.array([cache[s] for s in distinct.to_pylist()],
                                             pa.string()))

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

    def images(self, shas: pa.Array, files: pa.Array) -> pa.Array:
        return pa.array([self.image_bytes(s, f) for s, f in
                         zip(shas.to_pylist(), files.to_pylist(), strict=True)], pa.binary())

    def run_columns(self, ids: pa.Array) -> tuple[pa.Array, pa.Array]:
        index = pc.index_in(ids, value_set=self.run_ids)
        return self.run_names.take(index), self.run_models.take(index)


def uncalibrated(batch: Batch) -> pa.Array:
    """True for metric judgments whose scores came from random weights; False otherwise.

    Human judgments are never uncalibrated; metric judgments cast before calibration was
    recorded (null) count as calibrated only if nothing says otherwise.
    """
    is_metric = pc.equal(batch.column("judge_kind"), "metric")
    random_weights = pc.equal(batch.column("metric_calibrated"), False)
    return pc.fill_null(pc.and_(is_metric, random_weights), False)


def screen_columns(batch: Batch) -> dict[str, pa.Array]:
    """``screen_k``, ``screen_stage`` and ``weight``: a pair stated by a best-of-K vote
    (exports/screens.py) names its screen's K and pick; a pairwise vote has nulls, weight 1."""
    return {c.name: batch.column(c.name) for c in SCREEN}


def media_columns(batch: Batch, ctx: RowContext, side: str
                  ) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Side ``a`` or ``b``'s output file as (sha256, reference, is_video): the video file
    for a video output, the image for an image output (the row's media, not its poster)."""
    col = batch.column
    video_sha = col(f"video_{side}_sha256")
    video_ref = ctx.video_refs(video_sha, col(f"video_{side}_file"))
    image_sha = col(f"image_{side}_sha256")
    is_video = pc.is_valid(video_sha)
    image_ref = ctx.refs_where(pc.invert(is_video), image_sha, col(f"image_{side}_file"))
    return (pc.if_else(is_video, video_sha, image_sha),
            pc.if_else(is_video, video_ref, image_ref), is_video)


def raw_batch(batch: Batch, ctx: RowContext) -> pa.RecordBatch:
    col = batch.column
    run_a, model_a = ctx.run_columns(col("run_a_id"))
    run_b, model_b = ctx.run_columns(col("run_b_id"))
    columns = {
        "judgment_id": col("judgment_id"),
        "campaign_id": _constant(ctx.campaign_id, batch.num_rows, pa.int64()),
        "task_id": col("task_id"), "criterion": col("criterion"),
        "outcome": col("outcome"), "judge": col("judge_kind"),
        "metric_name": _blank(col("metric_name")), "uncalibrated": uncalibrated(batch),
        "annotator": ctx.annotator(col("annotator_id")),
        "annotator_reliability": ctx.annotator_reliability(col("annotator_id")),
        "is_gold": col("is_gold"),
        "gold_answer": _blank(col("gold_answer")), "prompt_id": col("prompt_id"),
        "prompt": col("prompt"), "prompt_category": col("prompt_category"),
        "image_a_id": col("image_a_id"), "image_a_sha256": col("image_a_sha256"),
        "image_b_id": col("image_b_id"), "image_b_sha256": col("image_b_sha256"),
        "video_a_sha256": col("video_a_sha256"), "video_b_sha256": col("video_b_sha256"),
        "run_a_id": col("run_a_id"), "run_a": run_a, "model_a": model_a,
        "run_b_id": col("run_b_id"), "run_b": run_b, "model_b": model_b,
        "a_side": _blank(col("a_side")), "latency_ms": col("latency_ms"),
        "client_id": col("client_id"), **screen_columns(batch),
        "created_at": col("created_at"),
    }
    if ctx.options.bundle:
        ctx.refs(col("image_a_sha256"), col("image_a_file"))
        ctx.refs(col("image_b_sha256"), col("image_b_file"))
        ctx.video_refs(col("video_a_sha256"), col("video_a_file"))
        ctx.video_refs(col("video_b_sha256"), col("video_b_file"))
    return pa.RecordBatch.from_arrays([columns[name] for name in RAW_SCHEMA.names],
                                      schema=RAW_SCHEMA)


def decimal_text(values: pa.Array) -> pa.Array:
    """Floats as their shortest text with a decimal point: 1.0 -> "1.0", 0.25 -> "0.25",
    1e+20 stays "1e+20" (an exponent marks a float as well); null stays null."""
    text = pc.cast(values, pa.string())
    whole = pc.match_substring_regex(text, r"^-?[0-9]+$")
    return pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)


def csv_batch(batch: Batch, ctx: RowContext) -> pa.RecordBatch:
    """A raw batch with its float columns written by :func:`decimal_text`."""
    raw = raw_batch(batch, ctx)
    return pa.RecordBatch.from_arrays(
        [decimal_text(column) if name in _CSV_FLOATS else column
         for name, column in zip(raw.schema.names, raw.columns, strict=True)],
        schema=CSV_SCHEMA)


def pickapic_batch(batch: Batch, ctx: RowContext) -> pa.RecordBatch:
    col = batch.column
    n = batch.num_rows
    outcomes = col("outcome")
    is_a, is_b = pc.equal(outcomes, Outcome.A.value), pc.equal(outcomes, Outcome.B.value)
    sha_0, sha_1 = col("image_a_sha256"), col("image_b_sha256")
    url_0 = ctx.refs(sha_0, col("image_a_file"))
    url_1 = ctx.refs(sha_1, col("image_b_file"))
    if ctx.options.image_bytes:
        jpg_0 = ctx.images(sha_0, col("image_a_file"))
        jpg_1 = ctx.images(sha_1, col("image_b_file"))
    else:
        jpg_0, jpg_1 = url_0, url_1
    run_0, model_0 = ctx.run_columns(col("run_a_id"))
    run_1, model_1 = ctx.run_columns(col("run_b_id"))
    label_0, label_1 = (_map(outcomes, _LABEL_KEYS, values) for values in _LABEL_VALUES)
    best = pc.if_else(is_a, sha_0, pc.if_else(is_b, sha_1, pa.scalar(None, pa.string())))
    columns = {
        "ranking_id": col("judgment_id"),
        "campaign_id": _constant(ctx.campaign_id, n, pa.int64()),
        "task_id": col("task_id"), "criterion": col("criterion"),
        "caption": col("prompt"), "prompt_category": col("prompt_category"),
        "jpg_0": jpg_0, "jpg_1": jpg_1, "label_0": label_0, "label_1": label_1,
        "outcome": outcomes, "has_label": _constant(True, n, pa.bool_()),
        "are_different": pc.not_equal(sha_0, sha_1),
        "best_image_uid": best, "image_0_uid": sha_0, "image_1_uid": sha_1,
        "image_0_url": url_0, "image_1_url": url_1,
        "image_0_side": _blank(col("a_side")),
        "video_0": ctx.video_refs(col("video_a_sha256"), col("video_a_file")),
        "video_1": ctx.video_refs(col("video_b_sha256"), col("video_b_file")),
        "video_0_uid": col("video_a_sha256"), "video_1_uid": col("video_b_sha256"),
        "model_0": model_0, "model_1": model_1,
        "run_0_id": col("run_a_id"), "run_1_id": col("run_b_id"),
        "run_0": run_0, "run_1": run_1,
        "user_id": ctx.annotator(col("annotator_id")),
        "annotator_reliability": ctx.annotator_reliability(col("annotator_id")),
        "judge": col("judge_kind"),
        "metric_name": _blank(col("metric_name")), "uncalibrated": uncalibrated(batch),
        "votes": col("votes"),
        "agreement": col("agreement"), **screen_columns(batch), "created_at": col("created_at"),
    }
    schema = pickapic_schema(image_bytes=ctx.options.image_bytes)
    return pa.RecordBatch.from_arrays([columns[name] for name in schema.names], schema=schema)


def _both_sides(a: pa.Array, b: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """The distinct values of two columns, and each column's indices into them."""
    distinct = pc.unique(pa.concat_arrays([a, b]))
    return distinct, pc.index_in(a, value_set=distinct), pc.index_in(b, value_set=distinct)


def dpo_lines(batch: Batch, ctx: RowContext) -> pa.Buffer:
    """JSONL bytes of a batch (ties and both-bad are never in a DPO batch).

    The chosen and rejected columns are dictionaries (the winner's index into the values
    of both sides), so each image, run and annotator is JSON-encoded once per batch.
    """
    col = batch.column
    outcomes = col("outcome")
    if not pc.all(pc.is_in(outcomes, pa.array([Outcome.A.value, Outcome.B.value]))).as_py():
        raise ValueError("DPO rows need a winner")  # excluded by the queryset; a bug if seen
    a_won = pc.equal(outcomes, Outcome.A.value)

    def pick(col_a: pa.Array, col_b: pa.Array, winner: bool) -> pa.Array:
        return pc.if_else(a_won, col_a, col_b) if winner else pc.if_else(a_won, col_b, col_a)

    def picked(index_a: pa.Array, index_b: pa.Array, dictionary: pa.Array, winner: bool
               ) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pick(index_a, index_b, winner), dictionary)

    # Each side's output: its video file for a video output, else its image.
    sha_a, ref_a, video_a = media_columns(batch, ctx, "a")
    sha_b, ref_b, _ = media_columns(batch, ctx, "b")
    shas, image_a, image_b = _both_sides(sha_a, sha_b)
    refs = pa.concat_arrays([ref_a, ref_b]).take(
        pc.index_in(shas, value_set=pa.concat_arrays([sha_a, sha_b])))
    run_a = pc.index_in(col("run_a_id"), value_set=ctx.run_ids)
    run_b = pc.index_in(col("run_b_id"), value_set=ctx.run_ids)
    # The chosen image was shown on A's side when A won, else on the other side.
    side = _blank(col("a_side"))
    other_side = pc.if_else(pc.equal(side, "left"), "right", "left")
    values = {
        "prompt": col("prompt"),
        "media": pc.if_else(video_a, pa.scalar("video"), pa.scalar("image")),
        "chosen": picked(image_a, image_b, refs, True),
        "rejected": picked(image_a, image_b, refs, False),
        "chosen_sha256": picked(image_a, image_b, shas, True),
        "rejected_sha256": picked(image_a, image_b, shas, False),
        "chosen_model": picked(run_a, run_b, ctx.run_models, True),
        "rejected_model": picked(run_a, run_b, ctx.run_models, False),
        "chosen_run_id": pick(col("run_a_id"), col("run_b_id"), True),
        "rejected_run_id": pick(col("run_a_id"), col("run_b_id"), False),
        "chosen_run": picked(run_a, run_b, ctx.run_names, True),
        "rejected_run": picked(run_a, run_b, ctx.run_names, False),
        "chosen_side": pc.if_else(a_won, side, other_side),
        "campaign_id": _constant(ctx.campaign_id, batch.num_rows, pa.int64()),
        "task_id": col("task_id"), "criterion": col("criterion"),
        "prompt_category": col("prompt_category"), "judge": col("judge_kind"),
        "metric_name": _blank(col("metric_name")), "uncalibrated": uncalibrated(batch),
        "annotator": ctx.annotator_codes(col("annotator_id")),
        "annotator_reliability": ctx.annotator_reliability(col("annotator_id")),
        "votes": col("votes"),
        "agreement": col("agreement"), **screen_columns(batch),
        "judgment_id": col("judgment_id"),
        "created_at": col("created_at"),  # written as "2025-03-01T12:00:05.123456Z"
    }
    return json_block(DPO_KEYS, [values[key] for key in DPO_KEYS])


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
            self.schema = CSV_SCHEMA
        else:
            self.schema = None
        # JSONL blocks are Arrow buffers that never change: they can be written while the
        # next batch is built. (Parquet and CSV writers reuse theirs: written in place.)
        self._background = BackgroundWriter(sink) if fmt == DPO_JSONL else None
        if fmt in (RAW_PARQUET, PICKAPIC_PARQUET):
            self._writer = pq.ParquetWriter(sink, self.schema, compression="zstd")
        elif fmt == RAW_CSV:
            self._writer = pacsv.CSVWriter(sink, self.schema)
        self._build: Callable[[Batch, RowContext], Any] = {
            RAW_PARQUET: raw_batch, RAW_CSV: csv_batch, PICKAPIC_PARQUET: pickapic_batch,
            DPO_JSONL: dpo_lines,
        }[fmt]

    def write(self, batch: Batch, ctx: RowContext) -> int:
        built = self._build(batch, ctx)
        if isinstance(built, pa.Buffer):  # JSONL: written without a copy into bytes
            assert self._background is not None
            self._background.write(memoryview(built))
            count = batch.num_rows
        else:
            self._writer.write_batch(built)
            count = built.num_rows
        self.rows += count
        return count

    def close(self) -> None:
        if self._background is not None:
            self._background.close()
        if self._writer is not None:  # (the CSV writer wrote the header when it opened)
            self._writer.close()

    def abort(self) -> None:
        """Stop the background writes of an export that will not be finished."""
        if self._background is not None:
            with contextlib.suppress(Exception):  # the export is abandoned anyway
                self._background.close()


__all__ = ["DPO_KEYS", "RAW_SCHEMA", "FormatWriter", "RowContext", "pickapic_schema"]
