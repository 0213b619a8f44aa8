"""Reading prompts: an editing prompt's source media."""

from __future__ import annotations

from dataclasses import dataclass

from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.prompts.models import Prompt


@dataclass(frozen=True)
class SourceMedia:
    """What an editing prompt starts from: ``kind`` "image" or "video"; ``still`` the image
    (for a video, its poster, the middle frame); ``video`` the video, or None."""

    kind: str
    still: ImageBlob
    video: VideoBlob | None = None


def source_media(prompt: Prompt) -> SourceMedia | None:
    """The prompt's source, or None for a prompt without one.

    Reads ``prompt.source_image`` and ``prompt.source_video`` (with its ``poster``): callers
    that serve many prompts load them with
    ``select_related("source_image", "source_video__poster")`` so this makes no query. The
    rating payload's source is ``image_payload(media.still, media.video)``
    (campaigns/serving/payloads.py), the shape of a pair's side: ``video`` null for a still
    source, the rendition's URL, fps, frames, duration and size for a video, served through
    ``blobs.access.video_access`` like a run's videos.
    """
    if prompt.source_video_id is not None:
        video = prompt.source_video
        return SourceMedia(kind="video", still=prompt.source_image or video.poster, video=video)
    if prompt.source_image_id is not None:
        return SourceMedia(kind="image", still=prompt.source_image)
    return None
