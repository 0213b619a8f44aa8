"""Video editing prompts and best-of-K video tasks on the rating path.

An editing prompt's source video reaches the page as the pair's sides do (``source_image``
with its ``video``), loaded with the task at no extra query; a campaign serves nothing until
every video it shows has its rendition: both sides of a pair, all K of a best-of-K task, and
the prompts' source videos.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from evalhub.blobs.models import VideoBlob
from evalhub.blobs.tasks import blobs_make_video_renditions
from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.campaigns.models import Lease, TaskKind
from evalhub.campaigns.serving.leasing import lease_queryset
from evalhub.campaigns.serving.payloads import image_payload, lease_payload, video_payload
from evalhub.campaigns.serving.rating import rate_next
from evalhub.prompts.models import Prompt
from evalhub.runs.models import GenerationRun, Image, MediaKind
from tests.builders import build_campaign
from tests.factories import png_bytes
from tests.videos import video_bytes

pytestmark = pytest.mark.django_db


def _store(seed: int) -> VideoBlob:
    data = video_bytes(frames=6, seed=seed)
    name = f"clip-{seed}.mp4"
    return video_store(data=data, info=video_inspect(data, name=name), name=name)


def _videos_for_outputs(world) -> None:
    """Every output of the world's runs becomes a video (its poster is the Image's blob)."""
    for number, image in enumerate(Image.objects.filter(run__in=world.runs).order_by("pk")):
        video = _store(seed=number + 1)
        Image.objects.filter(pk=image.pk).update(blob=video.poster, video=video)


def _source_video_for(prompt: Prompt, seed: int = 99) -> VideoBlob:
    """Make ``prompt`` a video-editing prompt, as the prompt import does: the source video,
    its poster as the still source."""
    video = _store(seed)
    Prompt.objects.filter(pk=prompt.pk).update(source_video=video, source_image=video.poster)
    return video


def _render_all() -> None:
    assert blobs_make_video_renditions(list(VideoBlob.objects.values_list("pk", flat=True)))


@pytest.fixture
def no_progress_cache(monkeypatch):
    from evalhub.campaigns.building import images

    monkeypatch.setattr(images, "PREPARING_CACHE_SECONDS", 0)


def test_a_pairs_source_video_is_sent_as_a_side_is_and_costs_no_query():
    world = build_campaign(runs=2, prompts=1, source_image=lambda i: png_bytes())
    source = _source_video_for(world.prompts[0])
    _render_all()

    payload = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    project_id = world.campaign.project_id
    assert payload["source_image"] == image_payload(source.poster, source, project_id=project_id)
    assert payload["source_image"]["video"] == video_payload(source, world.campaign.project_id)
    assert source.sha256 not in str(payload)  # the rendition, never the original

    # Image sides and a video source: the task's relations carry the source video and its
    # poster, so the payload reads nothing more (image pairs cost no query for videos).
    lease = lease_queryset().get(pk=payload["lease"])
    with CaptureQueriesContext(connection) as queries:
        shown = lease_payload(lease)["source_image"]["video"]
    assert shown == video_payload(source, project_id)
    assert len(queries) == 0, [q["sql"] for q in queries.captured_queries]


def test_a_still_source_has_a_null_video():
    world = build_campaign(runs=2, prompts=1, source_image=lambda i: png_bytes())
    payload = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    assert payload["source_image"]["url"] and payload["source_image"]["video"] is None


def test_no_pair_is_served_before_its_source_videos_rendition_exists(no_progress_cache):
    world = build_campaign(runs=2, prompts=1)
    _videos_for_outputs(world)
    source = _source_video_for(world.prompts[0])
    sides = list(VideoBlob.objects.exclude(pk=source.pk).values_list("pk", flat=True))
    blobs_make_video_renditions(sides)

    waiting = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    assert waiting["done"] is False and waiting["preparing"] == {"done": 2, "total": 3}
    blobs_make_video_renditions([source.pk])
    ready = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    assert ready["source_image"]["video"] == video_payload(VideoBlob.objects.get(pk=source.pk),
                                                          world.campaign.project_id)


def test_no_best_of_k_task_is_served_before_all_k_renditions_exist(no_progress_cache):
    """A best-of-K task names two of its K images in image_a/image_b: the check counts its
    members, so the K-th video is waited for too."""
    world = build_campaign(runs=4, prompts=1, task_kind=TaskKind.BEST_OF_K, k=4)
    _videos_for_outputs(world)
    ids = sorted(VideoBlob.objects.values_list("pk", flat=True))

    waiting = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    assert waiting["done"] is False and waiting["preparing"] == {"done": 0, "total": 4}
    blobs_make_video_renditions(ids[:3])
    assert rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)["preparing"] == {
        "done": 3, "total": 4}
    blobs_make_video_renditions(ids[3:])
    task = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    assert len(task["images"]) == 4 and all(i["video"] for i in task["images"])


def test_a_best_of_k_tasks_source_video_is_sent_with_the_k_videos():
    world = build_campaign(runs=3, prompts=1, task_kind=TaskKind.BEST_OF_K, k=3,
                           source_image=lambda i: png_bytes())
    _videos_for_outputs(world)
    source = _source_video_for(world.prompts[0])
    _render_all()

    task = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    assert Lease.objects.get(pk=task["lease"]).order is not None
    assert task["source_image"] == image_payload(source.poster, source,
                                                 project_id=world.campaign.project_id)


def test_a_video_campaigns_page_and_api_ask_about_videos_and_an_image_campaigns_about_images(
        client):
    videos = build_campaign(runs=3, prompts=1, task_kind=TaskKind.BEST_OF_K, k=3)
    _videos_for_outputs(videos)
    GenerationRun.objects.filter(pk__in=[run.pk for run in videos.runs]).update(
        media_kind=MediaKind.VIDEO)
    images = build_campaign(runs=3, prompts=1, task_kind=TaskKind.BEST_OF_K, k=3)

    # The question in its two wordings: with the shortcuts on, and off (rate.html).
    keyed = ('<span class="with-keys">Press its number.</span>'
             '<span class="without-keys">Pick it.</span>')

    def page(world) -> str:
        client.force_login(world.annotator)
        return client.get(f"/rate/{world.campaign.pk}/").content.decode()

    video_page, image_page = page(videos), page(images)
    assert (f"Which video is best? {keyed}") in video_page
    assert "Which video is better overall?" in video_page  # the criterion, in the config
    assert "Report broken video" in video_page and "Preparing videos" in video_page
    assert (f"Which image is best? {keyed}") in image_page
    assert "Which image is better overall?" in image_page
    assert "Report broken image" in image_page and "Preparing images" in image_page
    assert "broken video" not in image_page and "Preparing videos" not in image_page

    def api_questions(world) -> list[str]:
        client.force_login(world.annotator)
        answer = client.get(f"/api/v1/rate/{world.campaign.pk}/").json()
        return [criterion["question"] for criterion in answer["criteria"]]

    assert api_questions(videos) == ["Which video is better overall?"]
    assert api_questions(images) == ["Which image is better overall?"]


def test_lost_rendition_messages_are_queued_again_once_the_preparation_has_stalled(
        no_progress_cache, sent_tasks, monkeypatch, django_capture_on_commit_callbacks):
    """The import queues each video's rendition; a message lost on the way (a broker restart, a
    worker killed mid-task) would leave the campaign preparing forever. As for pyramids
    (tests/blobs/test_preparing_gate.py), the first look queues every missing rendition, one
    video a message, and later looks queue the rest again only once nothing has been rendered
    for ``STALLED_SECONDS``; running what was queued makes the campaign servable."""
    from evalhub.campaigns.building import images

    world = build_campaign(runs=2, prompts=1)
    _videos_for_outputs(world)
    source = _source_video_for(world.prompts[0])
    videos = sorted(VideoBlob.objects.values_list("pk", flat=True))
    assert source.pk in videos and len(videos) == 3
    clock = [1_000_000.0]
    monkeypatch.setattr(images.time, "time", lambda: clock[0])

    def looked_at() -> dict:
        """The rating API asked again, after the once-a-minute gate (a test cannot wait)."""
        cache.delete(f"campaign-images-requested:{world.campaign.pk}")
        with django_capture_on_commit_callbacks(execute=True):
            return rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)

    assert looked_at()["preparing"] == {"done": 0, "total": 3}
    assert sent_tasks == [("evalhub.blobs.make_video_renditions", [[pk]]) for pk in videos]
    sent_tasks.clear()

    assert blobs_make_video_renditions(videos[:1])  # a worker took the first; two were lost
    clock[0] += images.STALLED_SECONDS - 1
    assert looked_at()["preparing"] == {"done": 1, "total": 3}
    clock[0] += images.STALLED_SECONDS - 1  # nothing rendered since, but not for long
    assert looked_at()["preparing"] == {"done": 1, "total": 3}
    assert sent_tasks == []

    clock[0] += 2  # STALLED_SECONDS without a rendition: the two are queued again, once
    assert looked_at()["preparing"] == {"done": 1, "total": 3}
    assert looked_at()["preparing"] == {"done": 1, "total": 3}
    assert sent_tasks == [("evalhub.blobs.make_video_renditions", [[pk]]) for pk in videos[1:]]

    for _name, args in sent_tasks:  # what a worker does with them
        assert blobs_make_video_renditions(*args)
    task = looked_at()
    assert "preparing" not in task or task["preparing"] is None
    assert task["source_image"]["video"] is not None
