"""Work queued after new image files are stored: the display derivative annotators receive,
previews for lists, tiles for huge images."""

from __future__ import annotations

from collections.abc import Sequence

from evalhub.blobs.display import MAKE_BATCH, MAKE_TASK
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.tiles import BUILD_TASK, BUILDS_PER_TASK, large_q
from evalhub.core.queueing import enqueue_batches

PREVIEWS_TASK = "evalhub.blobs.make_previews"
#: Blobs per preview message (a preview is a few milliseconds to a second's work).
PREVIEWS_PER_TASK = 500


def blobs_after_store(blob_ids: Sequence[int], *, previews: bool = True) -> None:
    """Queue display derivatives and previews, and Deep Zoom pyramids for images above the
    tiling threshold (``default`` queue), so the first annotator to open an image does not wait
    for them; a campaign with such images is served once they exist
    (campaigns/building/images.py).

    ``previews=False`` for the blobs of a run's images (an import, a generation): each image's
    own task makes its blob's preview (runs/previews.py ``images_after_store``), and a second
    task here would decode the same file again and race it.

    The work is split into messages (core/queueing.py ``enqueue_batches``): derivatives and
    previews ``MAKE_BATCH`` / ``PREVIEWS_PER_TASK`` blobs each, pyramids one each, so every
    worker takes a share of a large import."""
    if not blob_ids:
        return
    enqueue_batches(MAKE_TASK, blob_ids, MAKE_BATCH)
    if previews:
        enqueue_batches(PREVIEWS_TASK, blob_ids, PREVIEWS_PER_TASK)
    enqueue_batches(BUILD_TASK, large_blob_ids(list(blob_ids)), BUILDS_PER_TASK)


def large_blob_ids(blob_ids: list[int]) -> list[int]:
    """The subset of ``blob_ids`` that need a pyramid: callers enqueue only these."""
    return list(ImageBlob.objects.filter(large_q(), id__in=blob_ids)
                .values_list("id", flat=True))
