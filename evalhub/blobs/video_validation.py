"""Decide whether a byte string is a video EvalHub accepts, before anything is stored.

Checks, in order (each refusal names the file and says why):

1. size: not empty, at most ``max_bytes``;
2. container: PyAV (FFmpeg) must open it, and its demuxer must be one of
   :data:`ACCEPTED_CONTAINERS` (MP4/MOV/M4V, WebM/Matroska); a file that FFmpeg cannot parse
   (a truncated MP4 without its ``moov`` index, random bytes) is refused here;
3. exactly one video stream of an accepted codec (:data:`ACCEPTED_CODECS`: H.264, HEVC, VP8,
   VP9, AV1); audio, subtitle and data streams are allowed but never reach annotators (the
   rendition holds the pictures only);
4. limits from the header, before decoding: frame size (``width * height <= max_pixels``),
   duration (``<= max_seconds``), frame count (``<= max_frames``), frame rate (0 < fps <= 240);
5. the file's own structure: its top-level elements (MP4/MOV boxes, the Matroska/WebM
   EBML header and Segment) must fit in the bytes given; a file cut anywhere inside a box or
   a Segment of known size is truncated, whatever stream the missing bytes belonged to;
6. every packet of every stream demuxed to the end and the video stream fully decoded, one
   frame at a time (memory: one frame), stopping as soon as a limit is passed, so a header
   that lies about its length cannot make us decode more than the limit. Refused: a frame
   whose size differs from the first, a demuxer or decoder error, fewer packets than a
   stream's index lists (any stream: a cut sound track too), decoded video frames spanning
   less than the video stream's own declared duration, or the packets of all streams
   together ending before the container's declared end (each by more than two frames: a
   WebM cut short demuxes and decodes without an error, and its container duration covers
   the longest stream, so the comparison is with the longest stream's packets).

``duration_s`` is ``frame_count / fps`` (seconds); ``fps`` is the stream's average frame rate
(frames per second). Variable-frame-rate files are accepted and retimed to ``fps`` by the
rendition (blobs/video_display.py).

No Django here: the generators' encoder and the bench use it too.
"""

from __future__ import annotations

import hashlib
import io
import math
import posixpath
from dataclasses import dataclass
from fractions import Fraction

import av

# FFmpeg demuxer name -> our container name by the file's extension.
_MOV_DEMUXER = "mov,mp4,m4a,3gp,3g2,mj2"
_MKV_DEMUXER = "matroska,webm"
ACCEPTED_CONTAINERS = {"mp4", "mov", "webm", "mkv"}
ACCEPTED_CODECS = {"h264", "hevc", "vp8", "vp9", "av1"}
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".webm", ".mkv"}
# Extensions of video formats EvalHub does not take: an import refuses a file so named by its
# name, unread, with the message a file of that container gets (:func:`refused_video_name`).
# Not ".ts" (MPEG transport stream): it is also TypeScript, which a folder may hold.
OTHER_VIDEO_EXTENSIONS = {".avi", ".wmv", ".asf", ".flv", ".f4v", ".mpg", ".mpeg", ".mpe",
                          ".m1v", ".m2v", ".m2ts", ".mts", ".vob", ".3gp", ".3g2", ".ogv",
                          ".mxf", ".rm", ".rmvb", ".divx", ".dv", ".qt", ".y4m"}
MAX_FPS = 240


class InvalidVideo(ValueError):
    """The bytes are not an acceptable video; the message says why, naming the file."""


@dataclass(frozen=True)
class VideoLimits:
    """Import limits (settings ``EVALHUB_MAX_VIDEO_*``)."""

    max_bytes: int
    max_seconds: float
    max_frames: int
    max_pixels: int


@dataclass(frozen=True)
class VideoInfo:
    """What validation learnt: stored on the ``VideoBlob`` row."""

    sha256: str
    container: str  # "mp4", "mov", "webm" or "mkv"
    codec: str  # FFmpeg codec name: "h264", "vp9", ...
    width: int
    height: int
    fps: float  # frames per second (the stream's average rate)
    frame_count: int
    duration_s: float  # frame_count / fps
    size_bytes: int
    fps_fraction: Fraction

    @property
    def extension(self) -> str:
        return {"mp4": "mp4", "mov": "mov", "webm": "webm", "mkv": "mkv"}[self.container]

    @property
    def poster_index(self) -> int:
        """The frame shown as the video's still (its ``runs.Image`` blob): the middle one."""
        return self.frame_count // 2


def is_video_name(name: str) -> bool:
    """Whether a file name has a video extension (imports route such files here)."""
    lower = name.lower()
    return any(lower.endswith(ext) for ext in VIDEO_EXTENSIONS)


def refused_video_name(name: str) -> str | None:
    """The refusal of a file whose extension is that of a video format EvalHub does not take
    (:data:`OTHER_VIDEO_EXTENSIONS`: ``clips/a.avi: container 'avi' is not accepted ...``,
    what the same file named ``.mp4`` gets once FFmpeg has opened it), or None."""
    extension = posixpath.splitext(name)[1].lower()
    if extension not in OTHER_VIDEO_EXTENSIONS:
        return None
    return _container_refusal(name, extension[1:])


def _container_refusal(name: str, container: str) -> str:
    return (f"{name}: container {container!r} is not accepted (accepted: MP4, MOV, WebM, "
            "Matroska)")


def _container_name(demuxer: str, name: str) -> str | None:
    lower = name.lower()
    if demuxer == _MOV_DEMUXER:
        return "mov" if lower.endswith(".mov") else "mp4"
    if demuxer == _MKV_DEMUXER:
        return "mkv" if lower.endswith(".mkv") else "webm"
    return None


def _stream_fps(stream: av.video.stream.VideoStream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return Fraction(rate.numerator, rate.denominator)
    return None


def _header_seconds(container: av.container.InputContainer,
                    stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def inspect_video(data: bytes, *, name: str, limits: VideoLimits) -> VideoInfo:
    """Fully decode ``data`` and describe it, or raise :class:`InvalidVideo` (module doc)."""
    if not data:
        raise InvalidVideo(f"{name}: file is empty")
    if len(data) > limits.max_bytes:
        raise InvalidVideo(
            f"{name}: {len(data):,} bytes exceeds the limit of {limits.max_bytes:,} bytes "
            "(EVALHUB_MAX_VIDEO_BYTES)")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise InvalidVideo(
            f"{name}: not a readable video container; the file is damaged, truncated or of "
            f"an unknown format ({exc})") from exc
    with container:
        kind = _container_name(container.format.name, name)
        if kind is None:
            raise InvalidVideo(_container_refusal(name, container.format.name))
        videos = list(container.streams.video)
        if not videos:
            raise InvalidVideo(f"{name}: has no video stream (an audio-only file, or one "
                               "truncated or damaged before its video track)")
        if len(videos) != 1:
            raise InvalidVideo(f"{name}: has {len(videos)} video streams; exactly one is needed")
        stream = videos[0]
        codec = stream.codec_context.name
        if codec not in ACCEPTED_CODECS:
            raise InvalidVideo(
                f"{name}: video codec {codec!r} is not accepted (accepted: "
                f"{', '.join(sorted(ACCEPTED_CODECS))})")
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            raise InvalidVideo(f"{name}: the video stream has no frame size")
        _check_pixels(name, width, height, limits)
        fps = _stream_fps(stream)
        if fps is None or fps > MAX_FPS:
            # A Fraction (30000/1001) is said in frames per second, as a person reads it.
            rate = "unknown" if fps is None else f"{float(fps):.5g} frames/s"
            raise InvalidVideo(f"{name}: frame rate {rate} is not between 0 and "
                               f"{MAX_FPS} frames/s")
        seconds = _header_seconds(container, stream)
        # The container's duration covers every stream (a longer sound track too): compare
        # decoded frames with it only when the video stream is alone or has its own.
        own_seconds = seconds if (stream.duration is not None
                                  or len(container.streams) == 1) else None
        if seconds is not None and seconds > limits.max_seconds:
            raise InvalidVideo(_too_long(name, seconds, limits))
        if stream.frames and stream.frames > limits.max_frames:
            raise InvalidVideo(_too_many(name, stream.frames, limits))
        structure = _structure_problem(data, kind)
        if structure is not None:
            raise InvalidVideo(f"{name}: truncated or damaged: {structure}")
        read = _demux_and_decode(container, stream, name=name, size=(width, height), fps=fps,
                                 limits=limits)
        container_end = (None if container.duration is None else
                         (container.duration + (container.start_time or 0)) / av.time_base)
        indexed = {index: s.frames for index, s in enumerate(container.streams) if s.frames}
        kinds = {index: s.type for index, s in enumerate(container.streams)}
    count, span = read.frames, read.span
    if count == 0:
        raise InvalidVideo(f"{name}: the video stream has no decodable frame")
    if stream.frames and count < stream.frames:
        raise InvalidVideo(
            f"{name}: truncated or damaged: its index lists {stream.frames} frames but only "
            f"{count} decode")
    for index, listed in indexed.items():
        if read.packets.get(index, 0) < listed:
            raise InvalidVideo(
                f"{name}: truncated or damaged: its index lists {listed} packets of its "
                f"{kinds[index]} stream {index} but only {read.packets.get(index, 0)} demux")
    slack = 2 / float(fps)
    if own_seconds is not None and span is not None and span < own_seconds - slack:
        raise InvalidVideo(
            f"{name}: truncated or damaged: its header says {own_seconds:.2f} s but the frames "
            f"that decode span {span:.2f} s")
    if (container_end is not None and read.end is not None
            and read.end < container_end - slack):
        raise InvalidVideo(
            f"{name}: truncated or damaged: its header says its streams end at "
            f"{container_end:.2f} s but their packets end at {read.end:.2f} s")
    return VideoInfo(
        sha256=hashlib.sha256(data).hexdigest(), container=kind, codec=codec,
        width=width, height=height, fps=float(fps), frame_count=count,
        duration_s=float(count / fps), size_bytes=len(data), fps_fraction=fps,
    )


@dataclass(frozen=True)
class _Read:
    """What demuxing every packet and decoding the video stream found."""

    frames: int  # video frames decoded
    span: float | None  # seconds the decoded frames span (None without timestamps)
    packets: dict[int, int]  # packets demuxed per stream index
    end: float | None  # latest packet end over all streams, seconds (None without timestamps)


def _demux_and_decode(container: av.container.InputContainer,
                      stream: av.video.stream.VideoStream, *, name: str,
                      size: tuple[int, int], fps: Fraction, limits: VideoLimits) -> _Read:
    """Demux every packet of every stream to the end of the file and decode the video
    stream's (one frame in memory at a time; other streams are demuxed, not decoded); stop at
    the first limit passed.

    ``span`` is the last frame's time plus one frame, minus the first frame's time; ``end``
    the latest ``(pts + duration) x time_base`` of any packet, in seconds."""
    count = 0
    first: float | None = None
    last: float | None = None
    end: float | None = None
    packets: dict[int, int] = {}
    # The most frames whose duration (count / fps) is within max_seconds, in exact fractions
    # (a float product of 60 s and 30000/1001 frames/s could round either way).
    frame_limit = min(limits.max_frames, math.floor(Fraction(limits.max_seconds) * fps))
    try:
        for packet in container.demux():
            owner = packet.stream
            if packet.size:  # the demuxer's flush packets (size 0) carry no data
                packets[owner.index] = packets.get(owner.index, 0) + 1
                if packet.pts is not None and owner.time_base is not None:
                    packet_end = float((packet.pts + (packet.duration or 0)) * owner.time_base)
                    end = packet_end if end is None else max(end, packet_end)
            if owner is not stream:
                continue
            for frame in packet.decode():
                if (frame.width, frame.height) != size:
                    raise InvalidVideo(
                        f"{name}: frame {count} is {frame.width} x {frame.height}, the stream "
                        f"{size[0]} x {size[1]}; a size change mid-stream is not accepted")
                if frame.time is not None:
                    first = frame.time if first is None else first
                    last = frame.time
                count += 1
                if count > frame_limit:
                    if count > limits.max_frames:
                        raise InvalidVideo(_too_many(name, count, limits))
                    raise InvalidVideo(_too_long(name, float(count / fps), limits))
    except InvalidVideo:
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise InvalidVideo(
            f"{name}: truncated or damaged: decoding failed after {count} frames ({exc})"
        ) from exc
    span = None if first is None or last is None else last - first + 1 / float(fps)
    return _Read(frames=count, span=span, packets=packets, end=end)


# --- the file's own structure ------------------------------------------------------------------

_EBML_HEADER = 0x1A45DFA3
_SEGMENT = 0x18538067


def _structure_problem(data: bytes, container: str) -> str | None:
    """Why the file's top-level structure does not fit in ``data`` (it was cut), or None.

    MP4/MOV: top-level boxes are ``size (4 bytes, big-endian) type (4)``, ``size == 1`` then a
    64-bit size, ``size == 0`` up to the end of the file; every box must end within the file.
    Matroska/WebM: the EBML header, then the Segment whose size (an EBML variable-length
    integer) says where the file ends unless it is "unknown" (a live-written file)."""
    if container in ("mp4", "mov"):
        return _mp4_problem(data)
    return _matroska_problem(data)


def _mp4_problem(data: bytes) -> str | None:
    pos, total = 0, len(data)
    while pos < total:
        if total - pos < 8:
            return (None if not any(data[pos:]) else
                    f"the file ends {total - pos} bytes into a box header at byte {pos:,}")
        size, header = int.from_bytes(data[pos:pos + 4], "big"), 8
        kind = data[pos + 4:pos + 8].decode("latin-1")
        if size == 0:
            return None  # the last box runs to the end of the file
        if size == 1:
            if total - pos < 16:
                return f"the file ends inside the header of its {kind!r} box"
            size, header = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        if size < header:
            return f"its {kind!r} box at byte {pos:,} declares an impossible size ({size})"
        if pos + size > total:
            return (f"its {kind!r} box at byte {pos:,} declares {size:,} bytes but the file "
                    f"ends after {total - pos:,}")
        pos += size
    return None


def _ebml_vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, bool] | None:
    """(value, length in bytes, all value bits set = "unknown") of the EBML variable-length
    integer at ``pos``; None when it is cut or invalid. IDs keep their length marker."""
    if pos >= len(data) or data[pos] == 0:
        return None
    length = 9 - data[pos].bit_length()
    if pos + length > len(data):
        return None
    value = data[pos] if keep_marker else data[pos] & (0xFF >> length)
    for byte in data[pos + 1:pos + length]:
        value = (value << 8) | byte
    return value, length, not keep_marker and value == (1 << (7 * length)) - 1


def _matroska_problem(data: bytes) -> str | None:
    pos = 0
    while True:
        element = _ebml_vint(data, pos, keep_marker=True)
        size = element and _ebml_vint(data, pos + element[1], keep_marker=False)
        if element is None or size is None:
            return f"the file ends inside an EBML element header at byte {pos:,}"
        start = pos + element[1] + size[1]
        if element[0] == _SEGMENT:
            if size[2] or start + size[0] <= len(data):
                return None  # unknown size (written live): the demux checks are all we have
            return (f"its Segment declares {size[0]:,} bytes from byte {start:,} but the file "
                    f"ends after {len(data) - start:,}")
        if size[2]:
            return None  # an element of unknown size before the Segment: nothing to check
        pos = start + size[0]
        if element[0] != _EBML_HEADER and pos > len(data):
            return f"the file ends inside an element at byte {start:,}"
        if pos >= len(data):
            return "the file ends before its Segment"


def _check_pixels(name: str, width: int, height: int, limits: VideoLimits) -> None:
    if width * height > limits.max_pixels:
        raise InvalidVideo(
            f"{name}: frames of {width} x {height} = {width * height:,} pixels exceed the limit "
            f"of {limits.max_pixels:,} pixels (EVALHUB_MAX_VIDEO_PIXELS)")


def _too_long(name: str, seconds: float, limits: VideoLimits) -> str:
    return (f"{name}: {seconds:.1f} s or more exceeds the limit of {limits.max_seconds:g} s "
            "(EVALHUB_MAX_VIDEO_SECONDS)")


def _too_many(name: str, frames: int, limits: VideoLimits) -> str:
    return (f"{name}: {frames:,} frames or more exceeds the limit of {limits.max_frames:,} "
            "frames (EVALHUB_MAX_VIDEO_FRAMES)")
