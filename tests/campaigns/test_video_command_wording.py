"""The campaign commands say what a video campaign waits for: videos being converted for the
browser, not "large images still being prepared"."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from PIL import Image as PILImage

from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.runs.models import GenerationRun, Image, MediaKind
from tests.builders import build_campaign
from tests.videos import video_bytes

pytestmark = pytest.mark.django_db


def test_create_campaign_says_its_videos_are_being_converted(sent_tasks):
    world = build_campaign(runs=2, prompts=1)
    GenerationRun.objects.filter(pk__in=[run.pk for run in world.runs]).update(
        media_kind=MediaKind.VIDEO)
    for index, image in enumerate(Image.objects.filter(run__in=world.runs)):
        data = video_bytes(frames=6, seed=index)
        video = video_store(data=data, info=video_inspect(data, name=f"{index}.mp4"),
                            name=f"{index}.mp4")  # no rendition yet: a worker writes it
        Image.objects.filter(pk=image.pk).update(blob=video.poster, video=video)
    out = io.StringIO()
    call_command("create_campaign", "--project", world.campaign.project.slug, "--name", "clips",
                 "--runs", *[run.name for run in world.runs], "--build-here", stdout=out)
    text = out.getvalue()
    assert "Videos still being converted: 0 of 2 ready." in text
    assert "images" not in text.lower()


@pytest.mark.parametrize(("width", "height"), [
    (4200, 300),  # over 4096 px wide: opened as tiles, which a worker builds after the import
    (2100, 2100),  # too large for a display copy written in a request, too small for tiles
])
def test_an_image_campaign_says_large_images_are_being_prepared(sent_tasks, width, height):
    world = build_campaign(runs=2, prompts=1, image_bytes=lambda prompt, run: _solid_png(
        width, height, (60 * prompt, 90 * run, 40)))
    out = io.StringIO()
    call_command("campaign", str(world.campaign.pk), stdout=out)
    assert ("Large images still being prepared (tiles or a display copy): 0 of 2 ready."
            in out.getvalue())
    assert "tiled" not in out.getvalue()


def _solid_png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(out, format="PNG", compress_level=1)
    return out.getvalue()
