"""A campaign's large images must have their tiles or display derivatives, and its videos their
renditions, before anyone is served a pair.

Images above the tiling threshold (blobs/tiles.py, 4096 px) are opened on the rating page as
Deep Zoom pyramids that workers build after the import (a pyramid counts once built by the
current rule: tiles.py ``built_q``). Smaller images are shown as their display derivative,
which the media view writes in the request when the image is small, but leaves to a worker
above ``DISPLAY_SYNC_MAX_PIXELS`` (2048 x 2048 pixels), answering 503 until then; such an
image counts once its derivative is written by the current rule (blobs/display.py: after an
upgrade that raises the rule, every derivative written before is of an earlier one). Until
every image of a campaign (either side of a task, a best-of-K task's members, or its prompt's
source image) has what its pane loads, the rating API serves nothing and says how far the
preparation is (:func:`campaign_images_preparing`), so an annotator never votes on a pane that
is still empty, and the missing builds and derivatives are queued again (a lost message, an
upgrade) once nothing has been built for ``STALLED_SECONDS``, derivatives ``MAKE_BATCH`` per
task, pyramids and renditions one per task.

Videos (blobs/video_display.py) count likewise: a video shown on either side of a task, among
a best-of-K task's K members, or as its prompt's source video, is done once its VP9 rendition
and thumbnail strip exist, so a page never plays one video while another answers 503; missing
renditions are queued again like missing pyramids.

Cost: two aggregate queries (images: tiles and derivatives alike, read from the rows, never the
storage; videos) per campaign, process and
``PREPARING_CACHE_SECONDS`` while the campaign is preparing; once it is ready the fact is
cached for ``READY_CACHE_SECONDS``, and each process keeps it ``READY_MEMO_SECONDS`` more
without asking the shared cache (evalhub/core/cache.py ``remembered_get``), so a vote on a
ready campaign (with or without large images or videos) normally costs neither a query nor a
Redis round trip here. A task added later (a gold pair, a rebuild) is seen when that entry
runs out. (The ready entry's key changed when derivatives started to count, so an entry that
an earlier release wrote, counting tiles only, is not trusted after the upgrade.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, Q

from evalhub.blobs.display import display_by_worker_q, display_current_q, displays_queued
from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.tiles import (
    BUILD_TASK,
    BUILDS_PER_TASK,
    REQUEST_BUILD_SECONDS,
    built_q,
    large_q,
    needs_tiles,
)
from evalhub.blobs.video_services import RENDITION_TASK, RENDITIONS_PER_TASK
from evalhub.campaigns.models import Campaign, CampaignStatus, ComparisonTask, TaskImage
from evalhub.core.cache import remembered_get
from evalhub.core.queueing import enqueue_batches

READY_CACHE_SECONDS = 600
READY_MEMO_SECONDS = 10
PREPARING_CACHE_SECONDS = 3
# What is missing is queued again only after this long without a build finishing: longer than
# the slowest single build (a 16K pyramid, a long video's rendition), so that a busy worker is
# not taken for a lost message.
STALLED_SECONDS = 5 * 60


@dataclass(frozen=True)
class ImagesPreparing:
    """Images and videos of a campaign that need a worker's build before their panes can be
    drawn: how many have it (``done``) out of all of them (``total``)."""

    done: int
    total: int

    @property
    def detail(self) -> str:
        # "media": the count mixes large images being prepared and videos being converted (the
        # rating page says "Preparing images" or "Preparing videos" from the campaign's medium).
        return f"Preparing media ({self.done} of {self.total})"

    def progress(self) -> dict[str, int]:
        """``{"done": int, "total": int}``: the ``preparing`` field of the rating API."""
        return {"done": self.done, "total": self.total}

    def next_payload(self) -> dict[str, object]:
        """What ``next`` answers instead of a task (HTTP 200)."""
        return {"done": False, "preparing": self.progress(), "detail": self.detail}


def _ready_key(campaign_id: int) -> str:
    return f"campaign-panes-ready:{campaign_id}"


# What each image shown waits for (module doc): a large one its pyramid; one too large for a
# derivative written in a request, a current derivative.
_BY_WORKER = ~large_q() & display_by_worker_q()
_WAITING = large_q() | _BY_WORKER
_DONE = (large_q() & built_q()) | (_BY_WORKER & display_current_q())


def _waiting_blobs(campaign_id: int):
    tasks = ComparisonTask.objects.filter(campaign_id=campaign_id)
    # Best of K: the K images are the task's members (image_a/image_b name only two of them).
    members = TaskImage.objects.filter(task__campaign_id=campaign_id)
    shown = (Q(pk__in=tasks.values("image_a__blob_id")) | Q(pk__in=tasks.values("image_b__blob_id"))
             | Q(pk__in=members.values("image__blob_id"))
             | Q(pk__in=tasks.filter(prompt__source_image__isnull=False)
                 .values("prompt__source_image_id")))
    return ImageBlob.objects.filter(_WAITING).filter(shown)


def _videos(campaign_id: int):
    tasks = ComparisonTask.objects.filter(campaign_id=campaign_id)
    # Best of K: the K videos are the task's members; editing prompts: the source video.
    members = TaskImage.objects.filter(task__campaign_id=campaign_id)
    return VideoBlob.objects.filter(Q(pk__in=tasks.values("image_a__video_id"))
                                    | Q(pk__in=tasks.values("image_b__video_id"))
                                    | Q(pk__in=members.values("image__video_id"))
                                    | Q(pk__in=tasks.filter(prompt__source_video__isnull=False)
                                        .values("prompt__source_video_id")))


_RENDERED = ~Q(rendition="") & ~Q(thumbnails="")


def _count(campaign_id: int) -> ImagesPreparing:
    counts = _waiting_blobs(campaign_id).aggregate(total=Count("pk"),
                                                   done=Count("pk", filter=_DONE))
    videos = _videos(campaign_id).aggregate(total=Count("pk"),
                                            done=Count("pk", filter=_RENDERED))
    return ImagesPreparing(done=counts["done"] + videos["done"],
                           total=counts["total"] + videos["total"])


def _request_missing(campaign_id: int, done: int) -> None:
    """Queue the builds of the missing pyramids, derivatives and renditions again when the
    preparation has stalled: the import queued them already, but a message may have been lost,
    the images imported before workers built tiles, or an upgrade made their derivatives old.

    Looked at most once per ``REQUEST_BUILD_SECONDS``. The first look queues what is missing
    (nothing says the import's messages exist); after that, only when ``done`` has not grown
    for ``STALLED_SECONDS``. While workers are getting through a large import, each re-queue
    would add the whole remaining list to the queue behind the import's own messages, once a
    minute (the tasks skip what is done, but each duplicate still costs a worker a look).
    """
    if not cache.add(f"campaign-images-requested:{campaign_id}", 1, REQUEST_BUILD_SECONDS):
        return
    seen_key = f"campaign-images-seen:{campaign_id}"
    now = time.time()
    seen = cache.get(seen_key)  # (done, when it was first seen)
    if seen is not None and done > seen[0]:
        cache.set(seen_key, (done, now), STALLED_SECONDS * 4)
        return
    if seen is not None and done == seen[0] and now - seen[1] < STALLED_SECONDS:
        return  # (fewer done than before: new work appeared, an upgrade; queued at once)
    cache.set(seen_key, (done, now), STALLED_SECONDS * 4)
    missing = list(_waiting_blobs(campaign_id).exclude(_DONE).order_by("pk")
                   .only("pk", "width", "height"))
    enqueue_batches(BUILD_TASK, [blob.pk for blob in missing if needs_tiles(blob)],
                    BUILDS_PER_TASK)
    displays_queued([blob.pk for blob in missing if not needs_tiles(blob)])
    enqueue_batches(RENDITION_TASK, _videos(campaign_id).exclude(_RENDERED)
                    .order_by("pk").values_list("pk", flat=True), RENDITIONS_PER_TASK)


def campaign_images_preparing(campaign: Campaign) -> ImagesPreparing | None:
    """None when every image of the campaign has what its pane loads (module doc: a large
    image its tiles, one over ``DISPLAY_SYNC_MAX_PIXELS`` a current derivative) and every video
    its rendition; otherwise the progress, after queueing the missing builds. Cached: see the
    module doc; a campaign still building its tasks is never cached as ready (it has no tasks
    yet)."""
    campaign_id = campaign.pk
    if remembered_get(_ready_key(campaign_id), remember_s=READY_MEMO_SECONDS):
        return None
    progress_key = f"campaign-images-progress:{campaign_id}"
    cached = cache.get(progress_key)
    if cached is None:
        progress = _count(campaign_id)
        if progress.done == progress.total:
            if campaign.status != CampaignStatus.BUILDING:
                cache.set(_ready_key(campaign_id), True, READY_CACHE_SECONDS)
            return None
        cache.set(progress_key, (progress.done, progress.total), PREPARING_CACHE_SECONDS)
    else:
        progress = ImagesPreparing(*cached)
    _request_missing(campaign_id, progress.done)
    return progress
