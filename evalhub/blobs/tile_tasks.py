"""Background pre-building of DZI pyramids, so a 16K image opens at once on the rating page."""

from __future__ import annotations

from celery import shared_task
from django.db.models import Q

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.tiles import TILE_MIN_SIDE_PX, blob_build_tiles, needs_tiles


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


def large_blob_ids(blob_ids: list[int]) -> list[int]:
    """The subset of ``blob_ids`` that need a pyramid: callers enqueue only these."""
    big = Q(width__gt=TILE_MIN_SIDE_PX) | Q(height__gt=TILE_MIN_SIDE_PX)
    return list(ImageBlob.objects.filter(big, id__in=blob_ids).values_list("id", flat=True))
