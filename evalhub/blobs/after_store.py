"""Work queued after new image files are stored: the display derivative annotators receive,
previews for lists, tiles for huge images."""

from __future__ import annotations

from collections.abc import Sequence

from evalhub.blobs.display import MAKE_TASK
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.tiles import BUILD_TASK, large_q
from evalhub.core.queueing import enqueue_on_commit


def blobs_after_store(blob_ids: Sequence[int], *, previews: bool = True) -> None:
    """Queue display derivatives and previews, and Deep Zoom pyramids for images above the
    tiling threshold (``default`` queue), so the first annotator to open an image does not wait
    for them; a campaign with such images is served once they exist
    (campaigns/building/images.py).

    ``previews=False`` for the blobs of a run's images (an import, a generation): each image's
    own task makes its blob's preview (runs/previews.py ``images_after_store``), and a second
    task here would decode the same file again and race it."""
    if not blob_ids:
        return
    enqueue_on_commit(MAKE_TASK, list(blob_ids))
    if previews:
        enqueue_on_commit("evalhub.blobs.make_previews", list(blob_ids))
    large = large_blob_ids(list(blob_ids))
    if large:
        enqueue_on_commit(BUILD_TASK, large)


def large_blob_ids(blob_ids: list[int]) -> list[int]:
    """The subset of ``blob_ids`` that need a pyramid: callers enqueue only these."""
    return list(ImageBlob.objects.filter(large_q(), id__in=blob_ids)
                .values_list("id", flat=True))
