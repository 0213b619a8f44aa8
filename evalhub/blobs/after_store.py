"""Work queued after new image files are stored: previews for lists, tiles for huge images."""

from __future__ import annotations

from collections.abc import Sequence

from evalhub.core.tasks import enqueue_on_commit


def blobs_after_store(blob_ids: Sequence[int]) -> None:
    """Queue previews, and Deep Zoom pyramids for images above the tiling threshold, so the
    first annotator to open a 16K image does not wait for its pyramid."""
    if not blob_ids:
        return
    from evalhub.blobs.tasks import blobs_make_previews
    from evalhub.blobs.tile_tasks import blobs_build_tiles, large_blob_ids

    enqueue_on_commit(blobs_make_previews, list(blob_ids))
    large = large_blob_ids(list(blob_ids))
    if large:
        enqueue_on_commit(blobs_build_tiles, large)
