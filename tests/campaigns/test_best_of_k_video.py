"""Best-of-K tasks of video runs: each of the K carries ``video`` as a pair's sides do."""

from __future__ import annotations

import pytest

from evalhub.blobs.models import VideoBlob
from evalhub.blobs.tasks import blobs_make_video_renditions
from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.campaigns.models import Lease, TaskImage, TaskKind
from evalhub.campaigns.serving.payloads import video_payload
from evalhub.runs.models import GenerationRun, Image, MediaKind
from tests.builders import build_campaign
from tests.videos import video_bytes

pytestmark = pytest.mark.django_db


def test_a_best_of_k_payload_carries_each_videos_playback_like_a_pair(api):
    """Every image of a best-of-K task has ``video``, as the pair payload's sides do: the
    rendition's URL and fps for a video output (never the original), null for an image."""
    world = build_campaign(runs=3, prompts=1, task_kind=TaskKind.BEST_OF_K, k=3)
    GenerationRun.objects.filter(pk__in=[r.pk for r in world.runs]).update(
        media_kind=MediaKind.VIDEO)
    for number, image in enumerate(Image.objects.filter(run__in=world.runs).order_by("pk")):
        data = video_bytes(frames=6, seed=number)
        name = f"clip-{number}.mp4"
        video = video_store(data=data, info=video_inspect(data, name=name), name=name)
        Image.objects.filter(pk=image.pk).update(blob=video.poster, video=video)
    assert blobs_make_video_renditions(list(VideoBlob.objects.values_list("pk", flat=True)))

    api.force_login(world.annotator)
    task = api.post(f"/api/v1/rate/{world.campaign.pk}/next/", {}, format="json").json()
    lease = Lease.objects.get(pk=task["lease"])
    by_position = {m.position: m.image.video for m in TaskImage.objects.filter(
        task_id=lease.task_id).select_related("image__video__poster")}
    shown = [by_position[position] for position in lease.order]
    assert [i["video"] for i in task["images"]] == [
        video_payload(v, world.campaign.project_id) for v in shown]
    assert all(v.sha256 not in str(task) for v in shown)  # the rendition, not the original


def test_a_best_of_k_payload_of_images_has_null_videos(api):
    world = build_campaign(runs=3, prompts=1, task_kind=TaskKind.BEST_OF_K, k=3)
    api.force_login(world.annotator)
    task = api.post(f"/api/v1/rate/{world.campaign.pk}/next/", {}, format="json").json()
    assert [i["video"] for i in task["images"]] == [None, None, None]
