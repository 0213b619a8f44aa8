"""Celery tasks of the blobs app (default queue): display derivatives, previews, Deep Zoom
pyramids (and the whole levels older ones lack), video renditions."""

import logging
from collections import Counter
from dataclasses import asdict

from celery import shared_task

from evalhub.blobs import services
from evalhub.blobs.display import blob_make_display
from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.previews import blob_make_preview
from evalhub.blobs.tiles import (
    CLAIM_SECONDS,
    TilesBusy,
    WholeLevels,
    blob_build_tiles,
    blob_write_whole_levels,
    built_q,
    large_q,
    needs_tiles,
    pyramid_built,
)
from evalhub.blobs.video_display import video_make_rendition

# A blob held by another build is tried again this often, for as long as a claim can last.
BUSY_RETRY_SECONDS = 30
BUSY_RETRIES = CLAIM_SECONDS // BUSY_RETRY_SECONDS + 2
# Derivatives a storage error stopped are tried again after 1, 2, 4, 8 and 16 s.
DISPLAY_RETRIES = 5

logger = logging.getLogger(__name__)


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
    bind=True,
    name="evalhub.blobs.make_displays",
    max_retries=DISPLAY_RETRIES,
)
def blobs_make_displays(self, blob_ids: list[int]) -> int:
    """Write the display derivatives (what annotators receive) that are missing or were
    written by an earlier rule (display.py ``DISPLAY_RULE``); returns how many.

    One blob that cannot be written does not stop the others (a batch of
    ``display.MAKE_BATCH``: manage.py rewrite_displays): the reason is logged and the task goes
    on. Blobs a storage error (``OSError``) stopped are tried again by themselves, later;
    others (a file the decoder refuses) are left as they are, the media view answering 503 for
    them. Idempotent: current derivatives are skipped.
    """
    made = 0
    again: list[int] = []
    error: OSError | None = None
    for blob in ImageBlob.objects.filter(id__in=blob_ids):
        try:
            made += blob_make_display(blob)
        except OSError as exc:
            logger.warning("display derivative of blob %s not written, tried again later: "
                           "%s: %s", blob.pk, type(exc).__name__, exc)
            again.append(blob.pk)
            error = exc
        except Exception as exc:  # whatever it is: logged, and the batch goes on
            logger.warning("display derivative of blob %s not written: %s: %s", blob.pk,
                           type(exc).__name__, exc, exc_info=True)
    if again:
        raise self.retry(args=[again], exc=error, countdown=2 ** self.request.retries)
    return made


@shared_task(
    bind=True,
    name="evalhub.blobs.build_tiles",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=3,
)
def blobs_build_tiles(self, blob_ids: list[int]) -> int:
    """Build missing pyramids for the given blobs that need one; returns how many were built.

    Safe to call with any blob ids (small images are ignored) and to redeliver (idempotent).
    Blobs that another build holds are tried again in ``BUSY_RETRY_SECONDS``, until that build
    has finished or its claim has run out (a redelivered message of a killed worker finds its
    own dead claim).
    """
    built = 0
    busy: list[int] = []
    candidates = ImageBlob.objects.filter(id__in=blob_ids).only(
        "id", "sha256", "file", "width", "height", "tiles_format")
    for blob in candidates:
        if needs_tiles(blob) and not pyramid_built(blob):
            try:
                built += blob_build_tiles(blob)
            except TilesBusy:
                busy.append(blob.pk)
    if busy:
        raise self.retry(args=[busy], countdown=BUSY_RETRY_SECONDS,
                         max_retries=self.max_retries + BUSY_RETRIES)
    return built


@shared_task(
    name="evalhub.blobs.write_whole_levels",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def blobs_write_whole_levels(blob_ids: list[int]) -> dict:
    """Write the whole levels that the given blobs' built pyramids lack (blobs/tiles.py
    ``blob_write_whole_levels``: pyramids built before whole levels were stored); returns the
    levels written, already stored and not assembled (a tile missing), summed.

    Safe to call with any blob ids (small images and unbuilt pyramids are skipped) and to
    redeliver (a stored level is never written again).
    """
    totals = Counter(asdict(WholeLevels()))  # the result's fields, each 0
    blobs = ImageBlob.objects.filter(large_q(), built_q(), id__in=blob_ids).only(
        "id", "sha256", "width", "height", "tiles_format")
    for blob in blobs:
        totals.update(asdict(blob_write_whole_levels(blob)))
    return dict(totals)


@shared_task(
    name="evalhub.blobs.make_video_renditions",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def blobs_make_video_renditions(video_ids: list[int]) -> int:
    """Write missing video renditions and thumbnail strips (blobs/video_display.py); returns
    how many were written."""
    made = 0
    for video in VideoBlob.objects.filter(id__in=video_ids):
        made += video_make_rendition(video)
    return made


@shared_task(
    name="evalhub.blobs.delete_unreferenced",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def blobs_delete_unreferenced(image_ids: list[int], video_ids: list[int]) -> dict:
    """Delete the given blobs that nothing refers to any more, with their files (queued by the
    workspace's deletes once they have committed); returns what was removed."""
    return asdict(services.blobs_delete_unreferenced(image_ids=image_ids, video_ids=video_ids))
