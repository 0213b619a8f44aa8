"""Videos reach annotators as EvalHub's renditions only, as images reach them as displays: the
rating payload names the rendition and poster under opaque names, with no metadata or run
names; the media view serves renditions to members (with byte ranges, for seeking), originals
to owners and scientists, 404 to everyone else."""

from __future__ import annotations

import json

import pytest

from evalhub.blobs.models import VideoBlob
from evalhub.blobs.names import project_video_name
from evalhub.blobs.tasks import blobs_make_video_renditions
from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.blobs.views import video_url
from evalhub.campaigns.serving.rating import rate_next
from evalhub.runs.models import Image
from tests.builders import build_campaign
from tests.factories import UserFactory
from tests.videos import video_bytes

pytestmark = pytest.mark.django_db

SECRET = "model-zeta-internal"


def _video_world(*, rendered: bool = True):
    """Two runs answering one prompt with videos (titles naming the model in the files), their
    renditions written (as the worker does) unless ``rendered`` is false."""
    world = build_campaign(runs=2, prompts=1, run_names=["zeta-run-a", "zeta-run-b"],
                           model_name="zeta-model")
    for index, image in enumerate(Image.objects.filter(run__in=world.runs)):
        data = video_bytes(frames=10, seed=index + 1, metadata={"title": SECRET})
        video = video_store(data=data, info=video_inspect(data, name=f"{index}.mp4"),
                            name=f"{index}.mp4")
        # The tasks point at Image rows, which now hold videos, as an import would make them.
        Image.objects.filter(pk=image.pk).update(blob=video.poster, video=video)
    if rendered:
        blobs_make_video_renditions(list(VideoBlob.objects.values_list("pk", flat=True)))
    return world


def test_the_payload_gives_each_side_its_rendition_and_nothing_that_names_a_run():
    world = _video_world()
    payload = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)

    project_id = world.campaign.project_id
    videos = {project_video_name(project_id, v.pk): v for v in VideoBlob.objects.all()}
    for side in ("left", "right"):
        shown = payload[side]["video"]
        token = shown["url"].rsplit("/", 1)[1].removesuffix(".webm")
        video = videos[token]
        assert shown == {"url": video_url(video, project_id), "poster": payload[side]["url"],
                         "fps": 12.0, "frames": 10, "duration": 10 / 12, "width": 64,
                         "height": 48}
    text = json.dumps(payload)
    for leak in (SECRET, "zeta", *(v.sha256 for v in videos.values()),
                 *(v.rendition_token for v in videos.values()),  # internal, shared names
                 *(v.file.name for v in videos.values())):
        assert leak not in text


def test_no_video_pair_is_served_before_both_renditions_exist(monkeypatch, sent_tasks,
                                                              django_capture_on_commit_callbacks):
    from evalhub.campaigns.building import images

    monkeypatch.setattr(images, "PREPARING_CACHE_SECONDS", 0)
    world = _video_world(rendered=False)
    with django_capture_on_commit_callbacks(execute=True):
        waiting = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    assert waiting["done"] is False and waiting["preparing"] == {"done": 0, "total": 2}
    assert "left" not in waiting
    ids = sorted(VideoBlob.objects.values_list("pk", flat=True))
    assert [("evalhub.blobs.make_video_renditions", [[pk]]) for pk in ids] == [
        (name, args) for name, args in sent_tasks
        if name == "evalhub.blobs.make_video_renditions"]  # missing ones queued again, one each

    blobs_make_video_renditions(ids[:1])
    half = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    assert half["preparing"] == {"done": 1, "total": 2}
    blobs_make_video_renditions(ids)
    ready = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    assert ready["left"]["video"] and ready["right"]["video"]


def test_an_image_payload_has_a_null_video():
    world = build_campaign(runs=2, prompts=1)
    payload = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    assert payload["left"]["video"] is None and payload["right"]["video"] is None


def test_members_get_the_rendition_with_ranges_owners_the_original_others_404(client):
    world = _video_world(rendered=False)
    video = VideoBlob.objects.first()
    url = video_url(video, world.campaign.project_id)
    client.force_login(world.annotator)
    preparing = client.get(url)
    assert preparing.status_code == 503 and preparing["Retry-After"]

    assert blobs_make_video_renditions([video.pk]) == 1
    whole = client.get(url)
    assert whole.status_code == 200 and whole["Content-Type"] == "video/webm"
    assert whole["Accept-Ranges"] == "bytes"
    body = b"".join(whole.streaming_content)
    part = client.get(url, HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 10-19/{len(body)}"
    assert b"".join(part.streaming_content) == body[10:20]
    assert client.get(url, HTTP_RANGE=f"bytes={len(body)}-").status_code == 416
    assert client.get(video_url(video, world.campaign.project_id, "-strip.webp")
                      )["Content-Type"] == "image/webp"
    # The old global name of the rendition (the blob's internal token) is gone.
    assert client.get(f"/media/video/{video.rendition_token}.webm").status_code == 404

    original = f"/media/{video.file.name}"
    assert client.get(original).status_code == 404  # annotators never get the original
    client.force_login(world.owner)
    assert client.get(original).status_code == 200
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 404


def test_the_admin_lists_videos(client):
    _video_world()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/blobs/videoblob/")
    assert page.status_code == 200 and "h264" in page.content.decode()
    video = VideoBlob.objects.first()
    change = client.get(f"/admin/blobs/videoblob/{video.pk}/change/")
    assert change.status_code == 200 and video.sha256 in change.content.decode()


def test_the_images_api_describes_video_outputs_for_scientists(api, client):
    world = _video_world()
    api.force_authenticate(world.scientist)
    run = api.get(f"/api/v1/runs/{world.runs[0].pk}/").json()
    assert run["media_kind"] == "image"  # the builder's runs; an import of videos sets it
    listed = api.get("/api/v1/images/", {"run": world.runs[0].pk}).json()["results"]
    (row,) = listed
    video = VideoBlob.objects.get(images__pk=row["id"])
    assert row["video"] == {
        "sha256": video.sha256, "container": "mp4", "codec": "h264", "width": 64,
        "height": 48, "fps": 12.0, "frames": 10, "duration_s": 10 / 12,
        "size_bytes": video.size_bytes, "url": f"/media/{video.file.name}"}
    assert row["sha256"] == video.poster.sha256  # the image is the poster
    client.force_login(world.scientist)
    assert client.get(row["video"]["url"]).status_code == 200


def test_the_preparing_detail_of_a_video_campaign_does_not_call_its_videos_images(
        monkeypatch, sent_tasks, django_capture_on_commit_callbacks):
    from evalhub.campaigns.building import images

    monkeypatch.setattr(images, "PREPARING_CACHE_SECONDS", 0)
    world = _video_world(rendered=False)
    with django_capture_on_commit_callbacks(execute=True):
        waiting = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    # One wording for large images being tiled and videos being converted alike (the rating
    # page shows its own "Preparing videos 0 of 2", in the campaign's medium).
    assert waiting["detail"] == "Preparing media (0 of 2)"
