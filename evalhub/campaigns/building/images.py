"""A campaign's large images must have their tiles, and its videos their renditions, before
anyone is served a pair.

Images above the tiling threshold (blobs/tiles.py, 4096 px) are opened on the rating page as
Deep Zoom pyramids that workers build after the import. Until every such image of a campaign
(either side of a task, or its prompt's source image) has its pyramid, the rating API serves
nothing and says how far the preparation is (:func:`campaign_images_preparing`), so an
annotator never votes on a pane that is still empty.

Videos (blobs/video_display.py) count likewise: a video shown on either side of a task, among
a best-of-K task's K members, or as its prompt's source video, is done once its VP9 rendition
and thumbnail strip exist, so a page never plays one video while another answers 503; missing
renditions are queued again like missing pyramids.

Cost: two aggregate queries (images, videos) per campaign, process and
``PREPARING_CACHE_SECONDS`` while the campaign is preparing; once it is ready the fact is
cached for ``READY_CACHE_SECONDS``, and each process keeps it ``READY_MEMO_SECONDS`` more
without asking the shared cache (evalhub/core/cache.py ``remembered_get``), so a vote on a
ready campaign (with or without large images or videos) normally costs neither a query nor a
Redis round trip here. A task added later (a gold pair, a rebuild) is seen when that entry
runs out.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, Q

from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.tiles import BUILD_TASK, REQUEST_BUILD_SECONDS, large_q
from evalhub.blobs.video_services import RENDITION_TASK
from evalhub.campaigns.models import Campaign, CampaignStatus, ComparisonTask, TaskImage
from evalhub.core.cache import remembered_get
from evalhub.core.queueing import enqueue_on_commit

READY_CACHE_SECONDS = 600
READY_MEMO_SECONDS = 10
PREPARING_CACHE_SECONDS = 3


@dataclass(frozen=True)
class ImagesPreparing:
    """Large images of a campaign whose tiles exist (``done``) out of all of them (``total``)."""

    done: int
    total: int

    @property
    def detail(self) -> str:
        return f"Preparing images ({self.done} of {self.total})"

    def progress(self) -> dict[str, int]:
        """``{"done": int, "total": int}``: the ``preparing`` field of the rating API."""
        return {"done": self.done, "total": self.total}

    def next_payload(self) -> dict[str, object]:
        """What ``next`` answers instead of a task (HTTP 200)."""
        return {"done": False, "preparing": self.progress(), "detail": self.detail}


def _ready_key(campaign_id: int) -> str:
    return f"campaign-images-ready:{campaign_id}"


def _large_blobs(campaign_id: int):
    tasks = ComparisonTask.objects.filter(campaign_id=campaign_id)
    # Best of K: the K images are the task's members (image_a/image_b name only two of them).
    members = TaskImage.objects.filter(task__campaign_id=campaign_id)
    shown = (Q(pk__in=tasks.values("image_a__blob_id")) | Q(pk__in=tasks.values("image_b__blob_id"))
             | Q(pk__in=members.values("image__blob_id"))
             | Q(pk__in=tasks.filter(prompt__source_image__isnull=False)
                 .values("prompt__source_image_id")))
    return ImageBlob.objects.filter(large_q()).filter(shown)


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
    counts = _large_blobs(campaign_id).aggregate(
        total=Count("pk"), done=Count("pk", filter=Q(tiles_built_at__isnull=False)))
    videos = _videos(campaign_id).aggregate(total=Count("pk"),
                                            done=Count("pk", filter=_RENDERED))
    return ImagesPreparing(done=counts["done"] + videos["done"],
                           total=counts["total"] + videos["total"])


def _request_missing(campaign_id: int) -> None:
    """Queue the builds of the missing pyramids (at most once per REQUEST_BUILD_SECONDS): the
    import queued them already, but a message may have been lost, or the images imported before
    workers built tiles."""
    if not cache.add(f"campaign-images-requested:{campaign_id}", 1, REQUEST_BUILD_SECONDS):
        return
    missing = list(_large_blobs(campaign_id).filter(tiles_built_at__isnull=True)
                   .values_list("pk", flat=True))
    if missing:
        enqueue_on_commit(BUILD_TASK, missing)
    unrendered = list(_videos(campaign_id).exclude(_RENDERED).values_list("pk", flat=True))
    if unrendered:
        enqueue_on_commit(RENDITION_TASK, unrendered)


def campaign_images_preparing(campaign: Campaign) -> ImagesPreparing | None:
    """None when every large image of the campaign has its tiles (or it has none); otherwise
    the progress, after queueing the missing builds. Cached: see the module doc; a campaign
    still building its tasks is never cached as ready (it has no tasks yet)."""
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
    _request_missing(campaign_id)
    return progress
