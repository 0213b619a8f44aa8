"""Work queued after new image files are stored: the display derivative annotators receive,
previews for lists, tiles for huge images."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Q

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.tiles import TILE_MIN_SIDE_PX
from evalhub.core.queueing import enqueue_on_commit


def blobs_after_store(blob_ids: Sequence[int]) -> None:
    """Queue display derivatives and previews, and Deep Zoom pyramids for images above the
    tiling threshold, so the first annotator to open an image does not wait for them."""
    if not blob_ids:
        return
    enqueue_on_commit("evalhub.blobs.make_displays", list(blob_ids))
    enqueue_on_commit("evalhub.blobs.make_previews", list(blob_ids))
    large = large_blob_ids(list(blob_ids))
    if large:
        enqueue_on_commit("evalhub.blobs.build_tiles", large)


def large_blob_ids(blob_ids: list[int]) -> list[int]:
    """The subset of ``blob_ids`` that need a pyramid: callers enqueue only these."""
    big = Q(width__gt=TILE_MIN_SIDE_PX) | Q(height__gt=TILE_MIN_SIDE_PX)
    return list(ImageBlob.objects.filter(big, id__in=blob_ids).values_list("id", flat=True))
