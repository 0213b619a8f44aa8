"""The gallery on runs of videos: each side of a pair carries the rating page's video payload
(the rendition's URL, poster, fps, frames, duration, size; never the original), read in the
page's one image query; image pairs carry ``video: null`` and the page loads no player."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.runs.gallery.selectors import GalleryQuery, gallery_page
from evalhub.runs.models import GenerationRun, Image, MediaKind
from tests.builders import build_campaign
from tests.videos import webm_bytes

pytestmark = pytest.mark.django_db


def _as_videos(world, runs=None) -> None:
    """Turn ``runs`` (default: all of the world's) into runs of videos."""
    runs = world.runs if runs is None else runs
    for number, image in enumerate(Image.objects.filter(run__in=runs).order_by("pk")):
        data = webm_bytes(frames=6 + number, fps=6, seed=number)
        video = video_store(data=data, info=video_inspect(data, name=f"{number}.webm"),
                            name=f"{number}.webm")
        Image.objects.filter(pk=image.pk).update(blob=video.poster, video=video)
    GenerationRun.objects.filter(pk__in=[run.pk for run in runs]).update(
        media_kind=MediaKind.VIDEO)


def _page(world):
    left, right = world.runs
    return gallery_page(project_id=world.campaign.project_id,
                        query=GalleryQuery(left=left.pk, right=right.pk))


def _config(world) -> dict:
    left, right = world.runs
    client = Client()
    client.force_login(world.owner)
    html = client.get(f"/gallery/{world.campaign.project_id}/",
                      {"a": left.pk, "b": right.pk}).content.decode()
    start = html.index('<script id="gallery-config" type="application/json">')
    body = html[start:].split(">", 1)[1].split("</script>", 1)[0]
    return {"html": html, **json.loads(body)}


def test_each_side_of_a_video_pair_carries_its_rendition_and_timing():
    world = build_campaign(runs=2, prompts=2, annotators=1)
    _as_videos(world)
    item = _page(world).items[0]
    image = Image.objects.select_related("video", "video__poster").get(pk=item.left.id)
    video = item.left.as_json()["video"]
    assert video["url"].startswith("/media/video/") and video["url"].endswith(".webm")
    assert image.video.sha256 not in video["url"]  # an opaque name, not the original's
    assert video["poster"] == item.left.url  # the poster's display copy is the still
    assert (video["fps"], video["frames"]) == (6.0, image.video.frame_count)
    assert video["duration"] == pytest.approx(image.video.frame_count / 6)


def test_video_pairs_cost_the_queries_of_image_pairs():
    def queries(videos: bool) -> int:
        world = build_campaign(runs=2, prompts=3, annotators=1)
        if videos:
            _as_videos(world)
        with CaptureQueriesContext(connection) as captured:
            assert len(_page(world).items) == 3
        return len(captured)

    assert queries(videos=True) == queries(videos=False)


def test_the_page_loads_the_player_only_for_video_pairs():
    images = build_campaign(runs=2, prompts=1, annotators=1)
    config = _config(images)
    assert config["items"][0]["left"]["video"] is None
    assert "gallery-video-bar" not in config["html"] and "rate-video.css" not in config["html"]
    videos = build_campaign(runs=2, prompts=1, annotators=1)
    _as_videos(videos)
    config = _config(videos)
    assert config["items"][0]["right"]["video"]["url"].startswith("/media/video/")
    assert 'id="gallery-video-bar"' in config["html"] and "rate-video.css" in config["html"]


def test_the_criteria_ask_about_videos_on_video_runs_and_images_on_image_runs():
    images = build_campaign(runs=2, prompts=1, annotators=1)
    html = _config(images)["html"]
    assert "Which image is better overall?" in html and "Which video" not in html
    videos = build_campaign(runs=2, prompts=1, annotators=1)
    _as_videos(videos)
    html = _config(videos)["html"]
    assert "Which video is better overall?" in html and "Which image" not in html


def test_an_image_run_beside_a_video_run_is_refused_next_to_the_right_run():
    world = build_campaign(runs=3, prompts=1, annotators=1)
    images, video = world.runs[:2], world.runs[2]
    _as_videos(world, [video])
    client = Client()
    client.force_login(world.scientist)
    url = f"/gallery/{world.campaign.project_id}/"
    for (left, right), kinds in (((images[0], video), ("images", "videos")),
                                 ((video, images[0]), ("videos", "images"))):
        response = client.get(url, {"a": left.pk, "b": right.pk})
        assert response.status_code == 200
        assert response.context["page"] is None
        assert response.context["form"].errors == {"b": [
            f"The left run's outputs are {kinds[0]} and this run's are {kinds[1]}: "
            f"pick a run of {kinds[0]}."]}
        assert 'id="id_b_error"' in response.content.decode()
    # Unchosen, the page shows the two image runs, not the newer video run.
    default = client.get(url)
    assert (default.context["left"].id, default.context["right"].id) == (
        images[0].pk, images[1].pk)


def test_a_videos_page_plays_its_rendition_and_offers_the_original_to_scientists_only():
    world = build_campaign(runs=2, prompts=1, annotators=1)
    _as_videos(world)
    image = Image.objects.select_related("video").filter(run=world.runs[0]).get()
    client = Client()
    client.force_login(world.scientist)
    response = client.get(f"/gallery/images/{image.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    rendition = response.context["detail"].display["video"]["url"]
    assert rendition == _page(world).items[0].left.video["url"]  # the gallery's own URL
    assert '<video id="image-video"' in html and f'src="{rendition}"' in html
    original = response.context["detail"].video_original_url
    assert f'href="{original}" id="video-original" download' in html
    assert client.get(original).status_code == 200
    annotator = Client()
    annotator.force_login(world.annotator)
    assert annotator.get(original).status_code == 404
    assert annotator.get(f"/gallery/images/{image.pk}/").status_code == 403
    assert Client().get(original).status_code == 404


def test_an_images_page_has_no_player():
    world = build_campaign(runs=2, prompts=1, annotators=1)
    client = Client()
    client.force_login(world.scientist)
    response = client.get(f"/gallery/images/{world.tasks[0].image_a_id}/")
    assert response.context["detail"].video_original_url is None
    assert "<video" not in response.content.decode()
