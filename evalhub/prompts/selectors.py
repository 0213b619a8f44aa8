"""Reading prompts: an editing prompt's source media, the categories of prompt sets."""

from __future__ import annotations

from collections.abc import Iterable
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


def prompt_set_categories(prompt_set_ids: Iterable[int]) -> dict[int, list[str]]:
    """The categories of each prompt set's prompts, by set id, sorted and without the empty
    one (uncategorised prompts), in one query however many sets (a list page reads them for
    every set at once). Sorted here, not by the database, whose collation may differ."""
    ids = list(prompt_set_ids)
    found: dict[int, set[str]] = {pk: set() for pk in ids}
    for set_id, category in (Prompt.objects.filter(prompt_set_id__in=ids).exclude(category="")
                             .order_by().values_list("prompt_set_id", "category").distinct()):
        found[set_id].add(category)
    return {pk: sorted(categories) for pk, categories in found.items()}
