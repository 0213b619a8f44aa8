"""Exporting a campaign's votes as preference data, streamed in bounded memory.

One code path serves the command and the API: ``Exporter.steps`` writes batch after batch
into a binary sink (a file, a zip entry, or an in-memory pipe that the API drains after
every step) and yields between batches. Memory is bounded by the batch size (and, for
bundles, by a set of the referenced image hashes).
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
from django.core.files.storage import default_storage

from evalhub.campaigns.models import Campaign
from evalhub.core.errors import EvalHubError
from evalhub.exports.card import CARD_MARKER, dataset_card
from evalhub.exports.formats import FormatWriter, RowContext, uncalibrated
from evalhub.exports.kwise import kwise_jsonl, rankings_export_check
from evalhub.exports.options import DATA_FILE_NAMES, ExportOptions
from evalhub.exports.selectors import (
    annotator_usernames,
    export_queryset,
    judgment_batches,
    run_infos,
)
from evalhub.leaderboards.quality_snapshot import current_reliability

EMPTY_MESSAGE = "No judgments match these filters; the file is empty but has the full schema."
COPY_CHUNK = 1024 * 1024


class OutputExists(EvalHubError):
    """The output path exists and overwriting was not asked for."""


@dataclass
class ExportSummary:
    rows: int = 0  # rows written so far, while the export runs
    votes: int = 0  # votes behind the rows; a best-of-K vote counts once for all its pairs
    # Annotators behind the rows; by pair, those whose votes the selected pairs pool, counted
    # before the tie and agreement filters drop pairs (none when no row is written).
    annotators: int = 0
    images: int = 0  # image files referenced
    videos: int = 0  # of which video files
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)  # (criterion, outcome) -> rows
    # Rows whose ``uncalibrated`` column is true: metric judgments scored with random weights.
    uncalibrated: int = 0
    message: str = ""

    @property
    def empty(self) -> bool:
        return self.rows == 0


class CountingWriter(io.RawIOBase):
    """A write-only, non-seekable file object that knows its position (zip, Parquet)."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self.raw = raw
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.raw.write(data)
        size = len(data) if isinstance(data, bytes) else memoryview(data).nbytes
        self.position += size
        return size

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        if hasattr(self.raw, "flush"):
            self.raw.flush()


class Pipe(io.RawIOBase):
    """In-memory sink that the API drains between steps (holds a few batches at most).

    Written from the export's writer thread while the response drains it: hence the lock.
    """

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        data = bytes(data)
        with self._lock:
            self.chunks.append(data)
        return len(data)

    def drain(self) -> bytes:
        with self._lock:
            chunks, self.chunks = self.chunks, []
        return b"".join(chunks)


class Exporter:
    """One export of one campaign. Use ``steps(sink=...)`` or ``steps(folder=...)`` once."""

    def __init__(self, *, campaign: Campaign, options: ExportOptions) -> None:
        self.campaign = campaign
        self.options = options
        self.summary = ExportSummary()

    def _context(self) -> RowContext:
        usernames = (annotator_usernames(campaign=self.campaign)
                     if self.options.raw_usernames else None)
        return RowContext(campaign_id=self.campaign.pk, options=self.options,
                          runs=run_infos(campaign=self.campaign), usernames=usernames,
                          reliability=current_reliability(campaign=self.campaign).weights())

    def _write_rows(self, sink: IO[bytes], ctx: RowContext) -> Iterator[None]:
        writer = FormatWriter(CountingWriter(sink), options=self.options)
        summary = self.summary
        votes = 0.0  # each row's votes times its weight: a best-of-K vote's pairs sum to 1
        try:
            for batch in judgment_batches(campaign=self.campaign, options=self.options):
                writer.write(batch, ctx)
                counts = pa.table({"criterion": batch.column("criterion"),
                                   "outcome": batch.column("outcome")}).group_by(
                    ["criterion", "outcome"]).aggregate([([], "count_all")])
                summary.outcomes.update(dict(zip(
                    zip(counts["criterion"].to_pylist(), counts["outcome"].to_pylist(),
                        strict=True), counts["count_all"].to_pylist(), strict=True)))
                votes += pc.sum(pc.multiply(batch.column("votes"),
                                            batch.column("weight"))).as_py() or 0.0
                # The rows' own ``uncalibrated`` column, by the rule that writes it.
                summary.uncalibrated += pc.sum(pc.cast(uncalibrated(batch), pa.int64())
                                               ).as_py() or 0
                summary.rows = writer.rows  # ExportStream waits for the first row
                yield
        except BaseException:
            writer.abort()  # e.g. a client that went away: stop the writer thread
            raise
        writer.close()
        summary.votes = round(votes)
        summary.rows = writer.rows
        ctx.annotators.discard(None)
        if self.options.aggregate == "pair" and summary.rows:
            # Rows by pair name no annotator: count those whose votes the pairs pool (before
            # the agreement filter).
            summary.annotators = (export_queryset(campaign=self.campaign, options=self.options)
                                  .filter(annotator_id__isnull=False)
                                  .values("annotator_id").distinct().count())
        else:
            summary.annotators = len(ctx.annotators)
        summary.images = len(ctx.referenced) - len(ctx.videos)
        summary.videos = len(ctx.videos)
        summary.message = EMPTY_MESSAGE if summary.rows == 0 else ""

    def card(self) -> str:
        return dataset_card(campaign=self.campaign, options=self.options, summary=self.summary)

    def steps(self, *, sink: IO[bytes] | None = None, folder: Path | None = None
              ) -> Iterator[None]:
        """Write the export; yields after every batch and every few images.

        Without a bundle, the data file goes to ``sink``. ``bundle="zip"`` writes a zip to
        ``sink`` with the data file, ``images/<sha256>.<ext>`` (``videos/`` for a video
        campaign's files) and ``README.md``; ``bundle="folder"`` writes the same layout into
        ``folder``, where ``images/`` and ``videos/`` exist only when they hold a file.
        """
        started = time.perf_counter()
        ctx = self._context()
        name = DATA_FILE_NAMES[self.options.format]
        if self.options.bundle == "zip":
            assert sink is not None
            with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
                deflate = zipfile.ZIP_DEFLATED if name.endswith((".jsonl", ".csv")) else None
                info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
                info.compress_type = deflate or zipfile.ZIP_STORED
                with archive.open(info, "w", force_zip64=True) as entry:
                    yield from self._write_rows(entry, ctx)
                for index, (relative, storage_name) in enumerate(self._images(ctx)):
                    with archive.open(relative, "w", force_zip64=True) as entry, \
                            default_storage.open(storage_name, "rb") as source:
                        shutil.copyfileobj(source, entry, COPY_CHUNK)
                    if index % 16 == 15:
                        yield
                archive.writestr("README.md", self.card())
        elif self.options.bundle == "folder":
            assert folder is not None
            with open(folder / name, "wb") as handle:
                yield from self._write_rows(handle, ctx)
            # The files are known once the rows are written: a folder for each kind that has
            # one (a video campaign's DPO bundle has no images/, an empty export neither).
            for relative, storage_name in self._images(ctx):
                (folder / relative).parent.mkdir(exist_ok=True)
                with open(folder / relative, "wb") as target, \
                        default_storage.open(storage_name, "rb") as source:
                    shutil.copyfileobj(source, target, COPY_CHUNK)
            (folder / "README.md").write_text(self.card(), encoding="utf-8")
        else:
            assert sink is not None
            yield from self._write_rows(sink, ctx)
        self.summary.seconds = time.perf_counter() - started
        yield

    @staticmethod
    def _images(ctx: RowContext) -> Iterator[tuple[str, str]]:
        for sha, storage_name in sorted(ctx.referenced.items()):
            yield ctx.relative_path(sha, storage_name), storage_name


def _is_our_bundle(folder: Path) -> bool:
    card = folder / "README.md"
    if not any(folder.iterdir()):
        return True
    return card.is_file() and card.read_text(encoding="utf-8", errors="replace").startswith(
        CARD_MARKER)


def export_to_path(*, campaign: Campaign, options: ExportOptions, output: Path,
                   overwrite: bool = False, card: Path | None = None) -> ExportSummary:
    """Write an export to ``output`` (a file; a folder with ``bundle="folder"``).

    The result is written next to the target under a temporary name and moved into place
    when complete, so a failed export never leaves a half-written file at ``output``; the
    folders of ``output`` and ``card`` are checked before anything is written, and the card
    is written before the data is moved into place. An existing output is refused unless
    ``overwrite``; a folder is replaced only if it is
    empty or an earlier EvalHub bundle (it has our README.md card).
    """
    output = Path(output)
    targets = [output] + ([Path(card)] if card else [])
    if card and (Path(card).is_dir() or Path(card).resolve() == output.resolve()):
        raise OutputExists(f"{card} is a folder or the export itself; give the card a file "
                           "path of its own.")
    for target in targets:
        _refuse_existing(target, overwrite=overwrite)
    if output.is_dir() and options.bundle != "folder":
        raise OutputExists(f"{output} is a folder; give a file path (or use --bundle folder).")
    if output.exists() and options.bundle == "folder":
        if not output.is_dir():
            raise OutputExists(f"{output} is a file; --bundle folder needs a folder path.")
        if not _is_our_bundle(output):
            raise OutputExists(f"{output} is a non-empty folder that is not an EvalHub export; "
                               "refusing to replace it.")
    # A card inside a folder bundle is written into the bundle before it is moved into place
    # (written after, the replaced folder would take it along).
    inside = (card is not None and options.bundle == "folder"
              and Path(card).resolve().is_relative_to(output.resolve()))
    for target in targets if not inside else [output]:
        _refuse_missing_parent(target)
    exporter = Exporter(campaign=campaign, options=options)

    def write_card(folder: Path | None = None) -> None:
        # Inside the export's own block: a card that cannot be written fails the export
        # before the data is moved into place, so nothing is left behind.
        if not card:
            return
        path = Path(card)
        if inside and folder is not None:
            relative = Path(card).resolve().relative_to(output.resolve())
            path = folder / relative
            # Only the bundle's own card may be written over: any other file the export
            # wrote there (its data, an image) would be lost under the card.
            if path.exists() and relative != Path("README.md"):
                raise OutputExists(f"{card} is a file of the export itself; give the card "
                                   "a path of its own.")
            path.parent.mkdir(parents=True, exist_ok=True)
        with file_replaced_when_complete(path) as handle:
            handle.write(exporter.card().encode("utf-8"))

    if options.bundle == "folder":
        partial = _partial(output)
        try:
            partial.mkdir()
            for _ in exporter.steps(folder=partial):
                pass
            write_card(partial)
            if output.exists():
                shutil.rmtree(output)
            partial.rename(output)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    else:
        with file_replaced_when_complete(output) as handle:
            for _ in exporter.steps(sink=handle):
                pass
            write_card()
    return exporter.summary


def _refuse_existing(target: Path, *, overwrite: bool) -> None:
    if target.exists() and not overwrite:
        raise OutputExists(f"{target} already exists; pass --overwrite to replace it.")


def _refuse_missing_parent(output: Path) -> None:
    if not output.parent.exists():
        raise EvalHubError(f"The folder {output.parent} does not exist.")


def _partial(output: Path) -> Path:
    return output.with_name(f".{output.name}.partial-{os.getpid()}")


@contextmanager
def file_replaced_when_complete(output: Path) -> Iterator[IO[bytes]]:
    """A binary file written next to ``output`` under a temporary name and moved onto it
    when the block ends without an error; on an error it is deleted and ``output`` is left
    as it was (absent, or the previous export)."""
    partial = _partial(output)
    try:
        with open(partial, "wb") as handle:
            yield handle
        os.replace(partial, output)
    finally:
        if partial.exists():
            partial.unlink()


def rankings_to_path(*, campaign: Campaign, kind: str, output: Path, overwrite: bool = False,
                     include_excluded: bool = False) -> int:
    """Write a best-of-K campaign's rankings export (:func:`evalhub.exports.kwise.kwise_jsonl`,
    ``kind`` raw or dpo) to the file ``output``, as :func:`export_to_path` writes files.
    Returns the number of rows."""
    rankings_export_check(campaign)
    output = Path(output)
    _refuse_existing(output, overwrite=overwrite)
    if output.is_dir():
        raise OutputExists(f"{output} is a folder; give a file path.")
    _refuse_missing_parent(output)
    rows = 0
    with file_replaced_when_complete(output) as handle:
        for row in kwise_jsonl(campaign=campaign, kind=kind, include_excluded=include_excluded):
            handle.write(row)
            rows += 1
    return rows


class ExportStream:
    """The export as a stream of byte chunks (one per batch) for an HTTP response, begun.

    Grouping by pair and ``min_agreement`` may leave no row although votes match the filters,
    and a response's headers go out before its body: so the export is written here, batch by
    batch, until its first row (or to its end, when it has none) before the response is made,
    and ``empty`` says whether the file has any row. Nothing is written twice: the chunks
    written meanwhile (the file's start, one batch at most) wait in memory, the rest is
    written as the response is read. ``close`` (called by the response) stops an export that
    was not read to its end.
    """

    def __init__(self, *, campaign: Campaign, options: ExportOptions) -> None:
        if options.bundle == "folder":
            raise EvalHubError("A folder bundle cannot be downloaded; use bundle=zip.")
        self._pipe = Pipe()
        exporter = Exporter(campaign=campaign, options=options)
        self._steps = exporter.steps(sink=self._pipe)
        for _ in self._steps:
            if exporter.summary.rows:
                break
        self.empty = exporter.summary.rows == 0

    def __iter__(self) -> Iterator[bytes]:
        data = self._pipe.drain()
        if data:
            yield data
        for _ in self._steps:  # nothing left when the export ended while it began
            data = self._pipe.drain()
            if data:
                yield data
        data = self._pipe.drain()
        if data:
            yield data

    def close(self) -> None:
        self._steps.close()


def export_stream(*, campaign: Campaign, options: ExportOptions) -> ExportStream:
    """The export for an HTTP response (:class:`ExportStream`): its chunks, and whether the
    file is empty (then the response says so, ``EMPTY_MESSAGE``)."""
    return ExportStream(campaign=campaign, options=options)
