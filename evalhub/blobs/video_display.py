"""Video derivatives: the web rendition annotators receive, and a thumbnail strip.

The rendition is **VP9 in WebM** (``yuv420p``, CRF 32, constant frame rate = the original's
average rate, a key frame every second so that seeking and frame stepping stay cheap):

- VP9 WebM plays in every Chromium build and in Firefox, Edge and Safari 14.1+ without
  proprietary codecs. Debian's Chromium (156, measured) plays H.264 MP4 too, but builds
  without the proprietary-codec flag (Playwright's own Chromium, many distributions' and
  embedded Chromiums) do not, so VP9 is the one format that plays wherever the rating page
  runs; docs/video.md has the measurement.
- Pictures only: the rendition is written from decoded frames into a fresh container with
  FFmpeg's bit-exact flags, so it carries no audio, subtitles, chapters, titles, comments,
  creation times, handler names or encoder version of the original, and the same original
  always gives the same bytes (a redelivered task writes the same file).
- Its storage name is the keyed ``rendition_token`` (blobs/names.py), never the original's
  hash, and never sent: browsers get a per-project name (``project_video_name``).

The thumbnail strip is :data:`STRIP_FRAMES` evenly spaced frames, each scaled to
:data:`STRIP_HEIGHT` pixels high, side by side in one WebP.

Decoding is streaming: one decoded frame is held at a time (plus the encoder's own look-ahead
and the small strip), whatever the clip's length, and the original is read from storage, not
loaded whole.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from fractions import Fraction
from typing import BinaryIO

import av
from django.core.files.base import File
from django.core.files.storage import default_storage
from PIL import Image

from evalhub.blobs.locks import blob_lock
from evalhub.blobs.models import VideoBlob
from evalhub.blobs.names import video_path

RENDITION_SUFFIX = ".webm"
STRIP_SUFFIX = "-strip.webp"
RENDITION_CONTENT_TYPE = "video/webm"
STRIP_CONTENT_TYPE = "image/webp"
STRIP_FRAMES = 8
STRIP_HEIGHT = 72
#: libvpx-vp9 at its ``realtime`` deadline, fastest speed (cpu-used 8), row multithreading over
#: FFmpeg's default thread count (every core). Measured on this project's 2-core VM for a 10 s
#: 512 px clip (bench/video.py's): 3.8 ms of CPU per frame against 11.3 ms at the ``good``
#: deadline with cpu-used 5, for 426 KB instead of 157 KB and a luma PSNR of 47.7 dB instead
#: of 49.1 dB against the decoded original: visually lossless either way, and a few hundred
#: kbit/s is nothing for the rating page, while encoding three times faster lets the worker keep
#: up with generation. Same bitstream (VP9 profile 0, 4:2:0), so it plays wherever VP9 plays.
VP9_OPTIONS = {"crf": "32", "b:v": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}


def rendition_path(video: VideoBlob) -> str:
    return video_path(video.rendition_token, RENDITION_SUFFIX)


def strip_path(video: VideoBlob) -> str:
    return video_path(video.rendition_token, STRIP_SUFFIX)


def strip_indices(frame_count: int, frames: int = STRIP_FRAMES) -> list[int]:
    """Evenly spaced frame indices ``round(i * (n - 1) / (k - 1))``, first and last included."""
    if frame_count <= frames:
        return list(range(frame_count))
    return sorted({round(i * (frame_count - 1) / (frames - 1)) for i in range(frames)})


def write_rendition(source: BinaryIO, rendition: BinaryIO, strip: BinaryIO, *,
                    fps: float, frame_count: int | None = None) -> int:
    """Decode ``source`` frame by frame; write the VP9 WebM rendition and the WebP strip.

    ``frame_count``: the frames validation decoded, when known; else the container's count,
    else a demux-only pass counts the packets (WebM does not store a count). The strip's
    frames are then known before decoding, and only they are converted. Returns the number of
    frames written. Odd frame sizes are scaled to the next even size below (4:2:0 chroma
    needs even sizes).
    """
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(source, mode="r") as reader:
        stream = reader.streams.video[0]
        stream.thread_type = "AUTO"
        total = frame_count or stream.frames or _count_packets(reader, stream)
        width = stream.codec_context.width - stream.codec_context.width % 2
        height = stream.codec_context.height - stream.codec_context.height % 2
        with av.open(rendition, mode="w", format="webm",
                     options={"fflags": "+bitexact"}) as writer:
            out = writer.add_stream("libvpx-vp9", rate=rate)
            out.width, out.height, out.pix_fmt = width, height, "yuv420p"
            out.codec_context.flags |= av.codec.context.Flags.bitexact
            out.codec_context.gop_size = max(1, round(float(rate)))
            out.options = dict(VP9_OPTIONS)
            thumbs: Thumbs = []
            wanted = set(strip_indices(total)) if total else None
            count = 0
            for frame in reader.decode(stream):
                picture = frame.reformat(width=width, height=height, format="yuv420p")
                picture.pts = count
                picture.time_base = Fraction(1) / rate
                for packet in out.encode(picture):
                    writer.mux(packet)
                # A thumbnail only for frames the strip may use: the others are never converted.
                if wanted is None or count in wanted or count >= total - 1:
                    thumbs = _keep_spread([*thumbs, (count, _thumb(frame))], total)
                count += 1
            for packet in out.encode():
                writer.mux(packet)
    keep = set(strip_indices(count))
    _write_strip([image for index, image in thumbs if index in keep] or
                 [image for _, image in thumbs], strip)
    return count


def _count_packets(reader: av.container.InputContainer, stream: av.VideoStream) -> int:
    """Frames of ``stream`` by demuxing without decoding (one packet per video frame), then
    back to the start (sources are stored files, which seek)."""
    count = sum(1 for packet in reader.demux(stream) if packet.size)
    reader.seek(0)
    return count


def _thumb(frame: av.VideoFrame) -> Image.Image:
    """The frame at :data:`STRIP_HEIGHT` px high, scaled by swscale while converting to RGB (the
    full-size RGB picture is never made)."""
    width = max(1, round(frame.width * STRIP_HEIGHT / frame.height))
    return frame.to_image(width=width, height=STRIP_HEIGHT, interpolation="AREA")


Thumbs = list[tuple[int, Image.Image]]


def _keep_spread(thumbs: Thumbs, total: int) -> Thumbs:
    """Drop thumbnails the strip will not use, so memory stays bounded: with the header's
    frame count the final indices are known; without one, keep at most 2k and thin out."""
    if total:
        wanted = set(strip_indices(total))
        return [(i, t) for i, t in thumbs if i in wanted or i == thumbs[-1][0]]
    if len(thumbs) > 2 * STRIP_FRAMES:
        return thumbs[::2]
    return thumbs


def _write_strip(images: list[Image.Image], out: BinaryIO) -> None:
    if not images:
        raise ValueError("no frame decoded")
    strip = Image.new("RGB", (sum(i.width for i in images), STRIP_HEIGHT))
    x = 0
    for image in images:
        strip.paste(image, (x, 0))
        x += image.width
    strip.save(out, format="WEBP", quality=80, method=4)


def _save(path: str, handle: BinaryIO) -> str:
    handle.seek(0)
    if default_storage.exists(path):
        default_storage.delete(path)
    saved = default_storage.save(path, File(handle, name=path))
    with contextlib.suppress(NotImplementedError):  # object storage keeps its own times
        os.utime(default_storage.path(saved), (0, 0))  # no import time leaks via file times
    return saved


def video_make_rendition(video: VideoBlob) -> bool:
    """Write the video's rendition and strip unless it has them; returns whether it wrote.

    Idempotent like blobs/display.py: the row records the files only once both are complete,
    and builds on one host wait for each other (file lock).
    """
    if video.rendition and video.thumbnails:
        return False
    with blob_lock("video", video.sha256):
        current = VideoBlob.objects.filter(pk=video.pk).values("rendition", "thumbnails").first()
        if current and current["rendition"] and current["thumbnails"]:
            video.rendition, video.thumbnails = current["rendition"], current["thumbnails"]
            return False
        with (default_storage.open(video.file.name, "rb") as source,
              tempfile.TemporaryFile() as rendition, tempfile.TemporaryFile() as strip):
            write_rendition(source, rendition, strip, fps=video.fps,
                            frame_count=video.frame_count)
            saved_rendition = _save(rendition_path(video), rendition)
            saved_strip = _save(strip_path(video), strip)
        VideoBlob.objects.filter(pk=video.pk).update(rendition=saved_rendition,
                                                    thumbnails=saved_strip)
        video.rendition, video.thumbnails = saved_rendition, saved_strip
    return True
