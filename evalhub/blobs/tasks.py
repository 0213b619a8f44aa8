"""Celery tasks of the blobs app (default queue): display derivatives, previews, Deep Zoom
pyramids."""

from celery import shared_task

from evalhub.blobs.display import blob_make_display
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.previews import blob_make_preview
from evalhub.blobs.tiles import blob_build_tiles, needs_tiles


@shared_task(
    name="evalhub.blobs.make_previews",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def blobs_make_previews(blob_ids: list[int]) -> int:
    """Make missing previews for the given blobs; returns how many were made."""
    made = 0
    for blob in ImageBlob.objects.filter(id__in=blob_ids, preview=""):
        made += blob_make_preview(blob)
    return made


@shared_task(
    name="evalhub.blobs.make_displays",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def blobs_make_displays(blob_ids: list[int]) -> int:
    """Write missing display derivatives (what annotators receive); returns how many."""
    made = 0
    for blob in ImageBlob.objects.filter(id__in=blob_ids, display=""):
        made += blob_make_display(blob)
    return made


@shared_task(
    name="evalhub.blobs.build_tiles",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=3,
)
def blobs_build_tiles(blob_ids: list[int]) -> int:
    """Build missing pyramids for the given blobs that need one; returns how many were built.

    Safe to call with any blob ids (small images are ignored) and to redeliver (idempotent).
    """
    built = 0
    candidates = ImageBlob.objects.filter(id__in=blob_ids).only(
        "id", "sha256", "file", "width", "height")
    for blob in candidates:
        if needs_tiles(blob):
            built += blob_build_tiles(blob)
    return built
