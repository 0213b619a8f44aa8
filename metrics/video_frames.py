"""Streaming, batched video frame decoding with PyAV: sample frames, resize them while converting,
yield small uint8 batches.

Memory: a video is demuxed and decoded one frame at a time; a decoded frame is converted (and
resized) to RGB only when it is sampled, and at most ``batch_size`` converted frames are held
before they are yielded. Peak memory is therefore one decoder state (a few reference frames
of the source resolution) plus one batch of output frames, whatever the clip's length (the
C heap's free pages are handed back between batches: :func:`release_free_heap`).

Sampling (:class:`FrameSampling`), in decode order (frame index i = 0, 1, ... of the first
video stream):

* ``every=n``: frames 0, n, 2n, ... (``every=1``: every frame);
* ``count=N``: N frames evenly spaced over the clip, ``round(k (F - 1) / (N - 1))`` for
  k = 0..N-1 where F is the number of frames (read from the container, or counted by a
  demux-only pass over the packets when the container does not say; no decoding);
* ``limit=L`` (with ``every``): stop after L sampled frames, e.g. the first 16 frames of a clip
  for FVD.

Resizing happens in libswscale as part of the YUV -> RGB conversion (``size`` = exact width and
height, or ``short_side`` = shorter side in pixels, aspect kept, rounded to even), so a 512 px
frame that is wanted at 224 px is never materialised at 512 px in RGB. ``interpolation`` is
swscale's filter name (``"BICUBIC"``, ``"BILINEAR"``, ``"AREA"``...).

Hostile or broken input: every PyAV/FFmpeg error while opening, demuxing or decoding is
raised as :class:`VideoDecodeError` (a ValueError) naming the file; a file without a video
stream or without a decodable frame is refused the same way.
"""

from __future__ import annotations

import ctypes
import functools
import io
import math
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import av
import numpy as np
import torch
from torch import Tensor

#: What a video can be read from: a path, its bytes, or a binary file object.
VideoSource = str | os.PathLike | bytes | BinaryIO

T = TypeVar("T")
R = TypeVar("R")


class VideoDecodeError(ValueError):
    """The video could not be opened, demuxed or decoded (message names the file and why)."""


@dataclass(frozen=True)
class FrameSampling:
    """Which frames to take: ``every`` n-th (then at most ``limit``), or ``count`` evenly spaced.

    ``describe()`` is a short stable string (e.g. ``"every=1,limit=16"``) stored next to values.
    """

    every: int = 1
    count: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.count is not None and self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.count is not None and (self.every != 1 or self.limit is not None):
            raise ValueError("count (evenly spaced) cannot be combined with every or limit")

    def describe(self) -> str:
        if self.count is not None:
            return f"count={self.count}"
        return f"every={self.every}" + (f",limit={self.limit}" if self.limit else "")


@dataclass(frozen=True)
class FrameBatch:
    """``frames``: uint8 (B,3,H,W) RGB; ``indices``: their frame indices in the clip (ascending)."""

    frames: Tensor
    indices: list[int]


@dataclass(frozen=True)
class VideoProbe:
    """What the container says about its first video stream (``frames`` counted if unknown)."""

    width: int
    height: int
    frames: int
    fps: float
    duration_s: float
    codec: str


def _name(source: VideoSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, bytes):
        return f"<{len(source)} bytes>"
    return getattr(source, "name", "<file object>")


def _open(source: VideoSource) -> av.container.InputContainer:
    name = _name(source)
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    elif isinstance(source, os.PathLike):
        source = os.fspath(source)
    try:
        return av.open(source, mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoDecodeError(f"{name}: cannot open as a video ({exc})") from exc


def _video_stream(container: av.container.InputContainer, name: str) -> av.VideoStream:
    if not container.streams.video:
        raise VideoDecodeError(f"{name}: no video stream")
    return container.streams.video[0]


def _count_packets(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """Frames of ``stream`` by a demux-only pass (one packet per frame for video codecs)."""
    count = 0
    for packet in container.demux(stream):
        if packet.size:  # the flush packet at the end has no data
            count += 1
    container.seek(0)
    return count


def probe(source: VideoSource) -> VideoProbe:
    """Stream geometry, frame count, frame rate (frames/s), duration (s) and codec name."""
    name = _name(source)
    container = _open(source)
    try:
        stream = _video_stream(container, name)
        frames = stream.frames or _count_packets(container, stream)
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = frames / rate if rate else 0.0
        return VideoProbe(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            frames=int(frames),
            fps=rate,
            duration_s=duration,
            codec=stream.codec_context.name,
        )
    except av.FFmpegError as exc:
        raise VideoDecodeError(f"{name}: {exc}") from exc
    finally:
        container.close()


def sample_indices(total: int, count: int) -> list[int]:
    """``count`` indices evenly spaced over ``total`` frames: round(k (total - 1) / (count - 1)),
    deduplicated (fewer than ``count`` when the clip has fewer frames)."""
    if total <= 0:
        return []
    if count == 1:
        return [0]
    return sorted({round(k * (total - 1) / (count - 1)) for k in range(count)})


def output_size(
    width: int, height: int, *, size: tuple[int, int] | None, short_side: int | None
) -> tuple[int, int]:
    """(width, height) of converted frames: ``size`` as given, or the shorter side scaled to
    ``short_side`` with the aspect ratio kept (each side rounded to an even number >= 2), or the
    source size."""
    if size is not None and short_side is not None:
        raise ValueError("give size or short_side, not both")
    if size is not None:
        return int(size[0]), int(size[1])
    if short_side is None:
        return width, height
    scale = short_side / min(width, height)

    def even(v: float) -> int:
        return max(2, round(v / 2) * 2)

    if width <= height:
        return short_side, even(height * scale)
    return even(width * scale), short_side


def iter_frame_batches(
    source: VideoSource,
    *,
    sampling: FrameSampling = FrameSampling(),
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
    interpolation: str = "BICUBIC",
    batch_size: int = 16,
    threads: int = 0,
    channels_last: bool = False,
) -> Iterator[FrameBatch]:
    """Decode ``source`` once, in order, and yield the sampled frames as uint8 (B,3,H,W) batches.

    ``threads``: decoder threads (0: FFmpeg's choice; frame and slice threading are enabled).
    ``channels_last``: the batches keep the decoder's (B,H,W,3) memory layout
    (``torch.channels_last``) instead of being copied to contiguous (B,3,H,W).
    Raises VideoDecodeError for unreadable input and when no frame could be sampled.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    name = _name(source)
    container = _open(source)
    try:
        stream = _video_stream(container, name)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        wanted: set[int] | None = None
        last_wanted = None
        if sampling.count is not None:
            total = stream.frames or _count_packets(container, stream)
            wanted = set(sample_indices(total, sampling.count))
            last_wanted = max(wanted) if wanted else -1
        elif sampling.limit is not None:
            last_wanted = (sampling.limit - 1) * sampling.every
        out_w = out_h = 0
        pending: list[np.ndarray] = []
        indices: list[int] = []
        yielded = 0
        for index, frame in enumerate(container.decode(stream)):
            if last_wanted is not None and index > last_wanted:
                break
            take = index in wanted if wanted is not None else index % sampling.every == 0
            if not take:
                continue  # decoded (later frames may reference it) but never converted
            if not out_w:
                out_w, out_h = output_size(
                    frame.width, frame.height, size=size, short_side=short_side
                )
            pending.append(
                frame.to_ndarray(
                    format="rgb24", width=out_w, height=out_h, interpolation=interpolation
                )
            )
            indices.append(index)
            if len(pending) == batch_size:
                yield _batch(pending, indices, channels_last)
                yielded += len(pending)
                pending, indices = [], []
                release_free_heap()  # the consumer is done with what it freed: see there
        if pending:
            yield _batch(pending, indices, channels_last)
            yielded += len(pending)
        if not yielded:
            raise VideoDecodeError(f"{name}: no decodable frame")
    except av.FFmpegError as exc:
        raise VideoDecodeError(f"{name}: decoding failed ({exc})") from exc
    finally:
        container.close()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS, Windows)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim(0)``; elsewhere a
    no-op).

    Why: glibc raises its mmap threshold to the largest block freed so far, so after the first
    batch the batch-sized blocks (frames, network activations) come from the heaps instead of
    mmap, and a free block the next request does not fit in stays resident: the process's
    peak grew with the clip's length (decoding 512 px frames in batches of 16: 80 MB over the
    RSS before for a 10 s clip, 107 MB for 20 s; trimmed after every batch: 68 and 68 MB).
    bench/video.py, 10 s -> 20 s clips: CLIP frame features' peak growth +57 MB untrimmed,
    +16 MB trimmed; I3D's +95 MB and +8 MB; for about 5% more CPU (pages faulted in again).
    Called between batches, it also trims the arenas of the threads running the network.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _batch(arrays: list[np.ndarray], indices: list[int], channels_last: bool = False) -> FrameBatch:
    frames = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # (B,H,W,3) in memory
    if not channels_last:
        frames = frames.contiguous()
    return FrameBatch(frames=frames, indices=list(indices))


def read_frames(source: VideoSource, **kwargs: object) -> FrameBatch:
    """All sampled frames in one batch (small clips, tests): :func:`iter_frame_batches` joined."""
    batches = list(iter_frame_batches(source, **kwargs))  # type: ignore[arg-type]
    return FrameBatch(
        frames=torch.cat([b.frames for b in batches]),
        indices=[i for b in batches for i in b.indices],
    )


def write_test_video(
    path: str | Path,
    frames: Tensor | np.ndarray,
    *,
    fps: int = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
) -> Path:
    """Encode uint8 (T,H,W,3) RGB frames into ``path`` with PyAV (tests and benches only)."""
    path = Path(path)
    arr = np.asarray(frames, dtype=np.uint8)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = arr.shape[2], arr.shape[1]
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = options
        for rgb in arr:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def stream_batch_size(batch_size: int, device: torch.device) -> int:
    """Per-stream batch for :func:`map_in_streams`: ``batch_size`` shared among the CPU streams
    (so that one clip's frames keep every stream busy), unchanged on an accelerator."""
    from metrics.inception import cpu_streams

    if device.type != "cpu":
        return batch_size
    return max(1, math.ceil(batch_size / cpu_streams()[0]))


def map_in_streams(fn: Callable[[T], R], items: Iterable[T], device: torch.device) -> Iterator[R]:
    """``map(fn, items)`` in order. On CPU, ``fn`` (the network) runs in
    :func:`metrics.inception.cpu_streams` threads, each with its own intra-op thread count, while
    the calling thread keeps decoding (it advances ``items``); at most 2 x streams items are in
    flight, so memory stays bounded; the calling thread runs single-threaded meanwhile. Why
    streams rather than one batch over all cores: see ``cpu_streams`` (measured on the loaded
    2-core machine for InceptionV3)."""
    from metrics.inception import _ordered_map, cpu_streams

    streams, per_stream = cpu_streams() if device.type == "cpu" else (1, 0)
    if streams == 1:
        yield from map(fn, items)
        return
    caller_threads = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(streams, thread_name_prefix="evalhub-video",
                                initializer=torch.set_num_threads,
                                initargs=(per_stream,)) as pool:  # fmt: skip
            # The calling thread decodes and preprocesses with one intra-op thread: the streams
            # hold the cores, and its small per-frame ops on two OpenMP threads left a spinning
            # worker beside them (I3D on the loaded 2-core machine: 60 ms of CPU per frame
            # against 44 with one thread, the same features).
            torch.set_num_threads(1)
            yield from _ordered_map(pool, fn, items, window=2 * streams)  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(caller_threads)  # set_num_threads in a stream set the default
