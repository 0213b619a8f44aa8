"""Content-addressed video storage: the file, its row, and its poster frame as an image."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import av
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from evalhub.blobs.models import VideoBlob
from evalhub.blobs.services import blob_store, image_inspect
from evalhub.blobs.video_validation import InvalidVideo, VideoInfo, VideoLimits, inspect_video
from evalhub.core.queueing import enqueue_batches

RENDITION_TASK = "evalhub.blobs.make_video_renditions"
# Videos per rendition message: one, so that the renditions of an import are spread over every
# worker (a rendition takes about a second for a 10 s 512 px clip, a minute for long 1080p ones).
RENDITIONS_PER_TASK = 1


def video_limits() -> VideoLimits:
    """The deployment's limits (settings ``EVALHUB_MAX_VIDEO_*``)."""
    return VideoLimits(
        max_bytes=settings.EVALHUB_MAX_VIDEO_BYTES,
        max_seconds=settings.EVALHUB_MAX_VIDEO_SECONDS,
        max_frames=settings.EVALHUB_MAX_VIDEO_FRAMES,
        max_pixels=settings.EVALHUB_MAX_VIDEO_PIXELS,
    )


def video_inspect(data: bytes, *, name: str) -> VideoInfo:
    """:func:`inspect_video` with the deployment's limits."""
    return inspect_video(data, name=name, limits=video_limits())


def video_blob_path(info: VideoInfo) -> str:
    """``videos/ab/cd/abcd...ef.mp4``."""
    sha = info.sha256
    return f"videos/{sha[:2]}/{sha[2:4]}/{sha}.{info.extension}"


def poster_png(data: bytes, *, index: int, name: str) -> bytes:
    """The frame ``index`` of a validated video as PNG (decoding stops there)."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        image: Image.Image | None = None
        for position, frame in enumerate(container.decode(stream)):
            image = frame.to_image()
            if position >= index:
                break
    if image is None:
        raise InvalidVideo(f"{name}: no frame to show as its poster")
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", compress_level=6)
    return out.getvalue()


def video_store(
    *, data: bytes, info: VideoInfo, name: str,
    on_new_file: Callable[[str], None] | None = None,
    poster: bytes | None = None,
) -> VideoBlob:
    """Return the row for ``data``, writing the file and its poster only if they are new.

    ``poster``: the still as PNG bytes when the caller has it (a generator's middle frame);
    otherwise the middle frame is decoded from ``data``. Call inside the caller's transaction;
    ``on_new_file`` is told every storage path written (so a failed import deletes them).
    """
    existing = VideoBlob.objects.filter(sha256=info.sha256).first()
    if existing is not None:
        return existing
    still = poster if poster is not None else poster_png(data, index=info.poster_index,
                                                         name=name)
    poster_blob = blob_store(data=still, info=image_inspect(still, name=f"{name} (poster)"),
                             on_new_file=on_new_file)
    path = video_blob_path(info)
    if not default_storage.exists(path):
        path = default_storage.save(path, ContentFile(data))
        if on_new_file is not None:
            on_new_file(path)
    video, _ = VideoBlob.objects.get_or_create(
        sha256=info.sha256,
        defaults={
            "file": path, "container": info.container, "codec": info.codec,
            "width": info.width, "height": info.height, "fps": info.fps,
            "frame_count": info.frame_count, "duration_s": info.duration_s,
            "size_bytes": info.size_bytes, "poster": poster_blob,
        },
    )
    return video


def videos_after_store(video_ids: Sequence[int]) -> None:
    """Queue the renditions and strips of new videos (``default`` queue),
    ``RENDITIONS_PER_TASK`` each; their posters are images and go through ``blobs_after_store``
    like any other."""
    enqueue_batches(RENDITION_TASK, video_ids, RENDITIONS_PER_TASK)

