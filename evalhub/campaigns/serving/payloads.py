"""What the annotator page receives for a task: the prompt and two anonymous images or videos.

Nothing here may identify a run, checkpoint or model: images are EvalHub's own display copies
(metadata stripped, one encoding and URL extension for every image) under opaque names
(evalhub/blobs/display.py), never the imported files;
videos are EvalHub's VP9 renditions (pictures only, blobs/video_display.py), likewise. The names
are the campaign's project's own (blobs/names.py ``project_display_name``): the same bytes
shown in another project have another, unrelated name there, and computing them costs no
query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.names import project_display_name
from evalhub.blobs.tile_grants import tile_grant
from evalhub.blobs.tiles import Pyramid, needs_tiles, pyramid_built
from evalhub.blobs.views import display_url, video_url
from evalhub.campaigns.models import Campaign, Lease, criterion_questions


def video_payload(video: VideoBlob, project_id: int) -> dict[str, Any]:
    """The page's view of one video in project ``project_id``: the rendition's URL (VP9 WebM,
    pictures only, the project's opaque name), its poster's display URL, ``fps`` (frames per
    second), ``frames`` (count), ``duration`` (seconds, frames / fps) and size in pixels.
    Never the original or its hash."""
    return {
        "url": video_url(video, project_id),
        "poster": display_url(video.poster, project_id),
        "fps": video.fps,
        "frames": video.frame_count,
        "duration": video.duration_s,
        "width": video.width - video.width % 2,  # the rendition's (even) size
        "height": video.height - video.height % 2,
    }


# A pyramid's URLs (campaigns/page/urls.py): its descriptor and its tiles' folder, by token.
TILES_URL = "/rate/tiles/"
FOLDER_SUFFIX = "_files/"


def image_payload(blob: ImageBlob, video: VideoBlob | None = None, *,
                  project_id: int) -> dict[str, Any]:
    """The page's view of one image in project ``project_id``: the display derivative's URL
    (pixels re-encoded without metadata, lossless WebP for every image, under the project's
    opaque name for it; blobs/display.py, blobs/names.py), its size, and for images large enough
    to get tiles the pyramid's descriptor URL (same name) and, once it is built, its content
    (``pyramid``; null before: the page then opens the descriptor). Never the original file or
    its hash.

    ``video``: null for an image; for a video output (``blob`` is then its poster frame) the
    :func:`video_payload`."""
    # Images large enough to get a pyramid are opened tile by tile, never whole.
    tiled = needs_tiles(blob)
    token = project_display_name(project_id, blob.pk)
    return {
        "url": display_url(blob, project_id),
        "width": blob.width,
        "height": blob.height,
        "tiles": f"{TILES_URL}{token}.dzi" if tiled else None,
        "pyramid": pyramid_payload(blob, token) if tiled and pyramid_built(blob) else None,
        "video": video_payload(video, project_id) if video is not None else None,
    }


def pyramid_payload(blob: ImageBlob, token: str) -> dict[str, Any]:
    """What the image's Deep Zoom descriptor says (blobs/tiles.py ``dzi_xml``), so the page
    opens the pyramid without asking for the ``.dzi`` first: ``url`` (the tiles' folder, ending
    in ``/``: a tile is ``url + level/col_row.format``), ``width`` and ``height`` (pixels),
    ``tile_size`` and ``overlap`` (pixels), ``format`` (``jpeg`` or ``webp``: what the build
    chose from the pixels and recorded, ``tiles_format``; ``blob`` has a built pyramid),
    ``whole_levels`` (the levels also served as one picture, ``url + level/whole.format``:
    blobs/tiles.py) and ``query`` (appended to every tile URL: ``""`` here; a lease's payload
    puts the annotator's tile grant there, :func:`with_tile_grants`)."""
    pyramid = Pyramid(blob.width, blob.height)
    return {
        "url": f"{TILES_URL}{token}{FOLDER_SUFFIX}",
        "width": pyramid.width,
        "height": pyramid.height,
        "tile_size": pyramid.tile_size,
        "overlap": pyramid.overlap,
        "format": blob.tiles_format,
        "whole_levels": pyramid.whole_levels(),
        "query": "",
    }


def with_tile_grants(payload: dict[str, Any], user_id: int) -> dict[str, Any]:
    """``payload`` (a lease's) with a tile grant for ``user_id`` in each pyramid's ``query``
    (``?g=...``: blobs/tile_grants.py), so its tile requests need no access query. The grant
    says only what the lease already decided: this annotator sees these images."""
    images = [payload.get("source_image"), payload.get("left"), payload.get("right"),
              *payload.get("images", ())]
    for image in images:
        pyramid = image and image.get("pyramid")
        if pyramid:
            token = pyramid["url"].removeprefix(TILES_URL).removesuffix(FOLDER_SUFFIX)
            pyramid["query"] = f"?g={tile_grant(token, user_id)}"
    return payload


def _videos(*images: Any) -> dict[int, VideoBlob]:
    """The videos of the given ``runs.Image`` rows, one query, none when all are images (so an
    image campaign's rating path keeps its query count)."""
    ids = {image.video_id for image in images if image.video_id is not None}
    if not ids:
        return {}
    return VideoBlob.objects.select_related("poster").in_bulk(ids)


def criteria_payload(campaign: Campaign, medium: str) -> list[dict[str, str]]:
    """The campaign's criteria and their questions, worded for its ``medium`` ("image" or
    "video": ``campaigns.selectors.campaign_medium``)."""
    questions = criterion_questions(medium)
    return [{"key": key, "question": questions[key]} for key in campaign.criteria]


def lease_project_id(lease: Lease) -> int:
    """The project whose names a lease's payload uses: its campaign's (loaded with the lease
    on the rating path: no query)."""
    return lease.campaign.project_id


def _task_payload(*, project_id: int, lease_id: str, expires_at: datetime, a_side: str,
                  prompt: str,
                  source: ImageBlob | None, image_a: ImageBlob, image_b: ImageBlob,
                  video_a: VideoBlob | None = None, video_b: VideoBlob | None = None,
                  source_video: VideoBlob | None = None) -> dict[str, Any]:
    left, right = ((image_a, video_a), (image_b, video_b))
    if a_side != "left":
        left, right = right, left
    return {
        "lease": lease_id,
        "expires_at": expires_at.isoformat(),
        "prompt": prompt,
        # An editing prompt's source video plays on the pair's timeline (rate/video.js).
        "source_image": (image_payload(source, source_video, project_id=project_id)
                         if source else None),
        "left": image_payload(*left, project_id=project_id),
        "right": image_payload(*right, project_id=project_id),
    }


def lease_payload(lease: Lease) -> dict[str, Any]:
    if lease.order is not None:  # best of K: K images in the lease's order (serving/kwise.py)
        from evalhub.campaigns.serving.kwise import kwise_payload

        return with_tile_grants(kwise_payload(lease), lease.annotator_id)
    task = lease.task
    videos = _videos(task.image_a, task.image_b)
    return with_tile_grants(_task_payload(
        project_id=lease_project_id(lease), lease_id=str(lease.pk),
        expires_at=lease.expires_at, a_side=lease.a_side, prompt=task.prompt.text,
        source=task.prompt.source_image, image_a=task.image_a.blob,
        image_b=task.image_b.blob, video_a=videos.get(task.image_a.video_id),
        video_b=videos.get(task.image_b.video_id), source_video=task.prompt.source_video),
        lease.annotator_id)
